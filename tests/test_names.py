"""File names: one order of entities, labels that are safe as file names, and readers that find
exactly the files a writer names."""

import pytest

from bids_app import names


def test_entities_take_the_bids_and_bep023_order_whatever_order_they_are_given_in():
    scan = names.ScanEntities("01", "baseline", "carfentanil", "2")
    name = names.map_name(scan, "SRTM", "BPND", desc="sm8", space=names.TEMPLATE_SPACE)
    assert name == ("sub-01_ses-baseline_trc-carfentanil_run-2_space-MNI152NLin2009cAsym_"
                    "desc-sm8_model-SRTM_meas-BPND_mimap.nii.gz")
    assert names.parse(name) == ({"sub": "01", "ses": "baseline", "trc": "carfentanil",
                                  "run": "2", "space": names.TEMPLATE_SPACE, "desc": "sm8",
                                  "model": "SRTM", "meas": "BPND"}, "mimap", ".nii.gz")
    assert names.group_name("madam", "", ".json", desc="settings") == \
        "trc-madam_desc-settings.json"
    assert names.parse("trc-madam_desc-settings.json") == (
        {"trc": "madam", "desc": "settings"}, "", ".json")


@pytest.mark.parametrize("label", ["../x", "a/b", "a b", "a_b", "a-b", "", "$x$", "x.y"])
def test_a_label_that_is_not_letters_and_digits_never_becomes_a_name(label):
    with pytest.raises(ValueError, match="letters and digits"):
        names.filename("mimap", ".nii.gz", sub="01", desc=label)


def test_smoothing_labels_are_valid_for_any_fwhm():
    assert names.smoothing_desc(8.0) == "sm8"
    assert names.smoothing_desc(6.5) == "sm6p5"
    names.filename("mimap", ".nii.gz", desc=names.smoothing_desc(6.5))


def test_find_returns_exactly_the_files_with_the_entities_asked_for(tmp_path):
    scan = names.ScanEntities("01", None, "carfentanil")
    wanted = {
        "plain": names.map_name(scan, "SRTM", "BPND", space=names.TEMPLATE_SPACE),
        "smoothed": names.map_name(scan, "SRTM", "BPND", space=names.TEMPLATE_SPACE,
                                   desc="sm8"),
        "pvc": names.map_name(scan, "SRTM", "BPND", space=names.TEMPLATE_SPACE, pvc="RBV"),
        "r1": names.map_name(scan, "SRTM", "R1", space=names.TEMPLATE_SPACE),
        "native": names.map_name(scan, "SRTM", "BPND"),
        "other model": names.map_name(scan, "MRTM2", "BPND", space=names.TEMPLATE_SPACE),
    }
    folder = names.subject_dir(tmp_path, "01", None, "pet")
    folder.mkdir(parents=True)
    for name in wanted.values():
        (folder / name).touch()

    def found(**entities):
        return [p.name for p in names.find(tmp_path, "mimap", ".nii.gz", trc="carfentanil",
                                           meas="BPND", **entities)]
    assert found(space=names.TEMPLATE_SPACE, desc=None, model="SRTM", pvc=None) == \
        [wanted["plain"]]
    assert found(space=names.TEMPLATE_SPACE, desc="sm8", model="SRTM", pvc=None) == \
        [wanted["smoothed"]]
    assert found(space=names.TEMPLATE_SPACE, desc=None, model="*", pvc=None) == sorted(
        [wanted["plain"], wanted["other model"]])
