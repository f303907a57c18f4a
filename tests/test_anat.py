"""Brain extraction modes: a T1w that is brain-extracted already is recognised and kept as it
is (its non-zero voxels are the brain), a head image never is."""

import nibabel as nib
import numpy as np
import pytest

from bids_app.cli.common import run_cli
from bids_app.cli.simulate import main as simulate_main
from conftest import shared_data
from workflows.anat import bias_correct_and_extract, is_skull_stripped


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("anat")
    for name, extra in (("head", []), ("stripped", ["--skull-stripped"])):
        assert run_cli("petbind-simulate", simulate_main, [
            str(root / name), "--n-subjects", "2", "--voxel-size", "4", "--t1-voxel-size", "3",
            "--seed", "2", "-q", *extra]) == 0
    return root


def _t1w(root, kind):
    return root / kind / "sub-01" / "anat" / "sub-01_T1w.nii.gz"


def _truth_mask(root, kind):
    return root / kind / "derivatives" / "truth" / "sub-01" / "anat" / "sub-01_desc-brain_mask.nii.gz"


def test_only_brain_extracted_images_are_taken_for_brain_extracted(phantoms):
    # the simulated head has scalp and Rician noise everywhere, as a real head has
    assert not is_skull_stripped(nib.load(_t1w(phantoms, "head")).get_fdata())
    assert not is_skull_stripped(nib.load(shared_data("real-t1w", "chris_t1.nii.gz")).get_fdata())
    assert is_skull_stripped(nib.load(_t1w(phantoms, "stripped")).get_fdata())


def test_auto_mode_keeps_the_given_brain(phantoms, tmp_path):
    _, brain, mask = bias_correct_and_extract(str(_t1w(phantoms, "stripped")), str(tmp_path),
                                              mode="auto")
    got = nib.load(mask).get_fdata() > 0
    truth = nib.load(_truth_mask(phantoms, "stripped")).get_fdata() > 0
    dice = 2 * (got & truth).sum() / (got.sum() + truth.sum())
    assert dice > 0.99, dice                  # the brain as given (holes filled), not ROBEX's
    assert np.all(nib.load(brain).get_fdata()[~got] == 0)
    with pytest.raises(ValueError, match="skull-strip mode"):
        bias_correct_and_extract(str(_t1w(phantoms, "stripped")), str(tmp_path), mode="maybe")
