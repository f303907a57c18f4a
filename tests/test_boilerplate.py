"""The methods boilerplate: generated from a run's actual settings (a changed setting changes
the text), every citation key resolved to a reference, and CI failing rather than skipping
where the team's reference data are missing."""

import os

import pytest

from bids_app.boilerplate import REFERENCES, citation_keys, render_bib, render_markdown
from bids_app.cli.parser import build_parser
from bids_app.cli.run import config_from_args
from test_bad_input import make_dataset


def methods_of(ds, out, *options, elsewhere=None):
    """The participant level's methods text for a dataset, from the graph that would run;
    ``elsewhere``: subject -> (image, normalisation) made by PETPrep (Scan's fields)."""
    from bids_app.bids import check_scan, find_scans
    from bids_app.cli.run import merge_methods
    from bids_app.participant import init_petbind_wf

    config = config_from_args(build_parser().parse_args(
        [str(ds), str(out), "participant", "--skip-bids-validation", *options]))
    scans = find_scans(config.run)
    for scan in scans:
        check_scan(scan, config.participant)
        scan.preprocessed, scan.normalisation = (elsewhere or {}).get(scan.subject, (None, None))
    return merge_methods(init_petbind_wf(scans, config)[1])


def test_participant_methods_quote_the_settings_of_the_run(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    default = render_markdown("Methods", methods_of(ds, tmp_path / "out"))
    changed = render_markdown("Methods", methods_of(
        ds, tmp_path / "out", "--smoothing-fwhm", "6", "--pvc-psf-fwhm", "2.5",
        "--skull-strip-t1w", "skip"))
    assert "Gaussian kernel of 8 mm FWHM" in default and "geometric transfer" not in default
    assert "300 log-spaced bases of theta3 0.026-0.566 /min" in default      # carfentanil's
    assert "reference region (occipital)" in default and "ROBEX" in default
    assert "Gaussian kernel of 6 mm FWHM" in changed
    assert "Gaussian PSF of 2.5 mm FWHM" in changed and "(Rousset et al., 1998)" in changed
    assert "ROBEX" not in changed
    # every citation is resolved and listed among the references
    assert "[@" not in default and "Lammertsma AA, Hume SP" in default


def test_a_run_mixing_petpreps_images_and_its_own_describes_both(tmp_path):
    # sub-02's PET and normalisation came from PETPrep, sub-01's did not: the methods say how
    # each was made, the lead of each scan paragraph saying which scans it is about
    ds = make_dataset(tmp_path / "ds")
    source = "PETPrep 0.0.3"
    image = {"pet": "x_space-T1w_desc-preproc_pet.nii.gz", "source": source, "root": "d",
             "confounds": None}
    transforms = {"t1w2mni": "f.h5", "mni2t1w": "i.h5", "source": source}
    text = render_markdown("Methods", methods_of(ds, tmp_path / "out",
                                                 elsewhere={"02": (image, transforms)}))
    assert "The carfentanil scans were processed as follows" in text
    assert f"The carfentanil scans that {source} preprocessed were processed as follows" in text
    assert "then SyN" in text and f"through the transforms {source} estimated" in text


def test_every_citation_key_has_a_reference_and_a_bibtex_entry():
    text = [" ".join(f"[@{key}]" for key in REFERENCES)]
    assert citation_keys(text) == list(REFERENCES)
    bib = render_bib(text)
    assert bib.count("@article{") == len(REFERENCES)
    with pytest.raises(KeyError, match="nosuchkey"):
        citation_keys(["a claim [@nosuchkey]"])


def test_shared_reference_data_missing_under_ci_fails_instead_of_skipping(monkeypatch):
    from conftest import shared_data
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have"):
        shared_data("no-such-folder", "no-such-file")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        shared_data("no-such-folder", "no-such-file")
    assert os.environ.get("CI") is None
