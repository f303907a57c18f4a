"""Brain extraction modes: a T1w that is brain-extracted already is recognised and kept as it
is (its non-zero voxels are the brain), a head image never is."""

import nibabel as nib
import numpy as np
import pytest

from bids_app.cli.common import run_cli
from bids_app.cli.simulate import main as simulate_main
from conftest import shared_data
from workflows.imaging.anat import bias_correct_and_extract, is_skull_stripped


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
    return (root / kind / "derivatives" / "truth" / "sub-01" / "anat" /
            "sub-01_desc-brain_mask.nii.gz")


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


def test_n4_at_its_fitting_resolution_removes_a_smooth_bias_field(tmp_path):
    # A 1 mm "head" of three flat tissues (0.3, 0.6, 1.0) times a smooth multiplicative field
    # of about +-15 % (varying over ~5 cm), with 1 % noise: N4, fitted at N4_FIT_MM (shrink 8 on
    # 1 mm voxels), must flatten the brightest tissue to within a third of its biased spread.
    from scipy import ndimage

    from workflows.imaging.anat import N4_FIT_MM, n4_shrink_factor

    assert n4_shrink_factor((1.0, 1.0, 1.0)) == round(N4_FIT_MM)
    assert n4_shrink_factor((3.0, 3.0, 3.0)) == 3
    rng = np.random.default_rng(0)
    r = np.linalg.norm(np.indices((128,) * 3) - 63.5, axis=0)
    truth = np.select([r < 35, r < 50, r < 60], [1.0, 0.6, 0.3], 0.0)
    field = ndimage.zoom(rng.standard_normal((4, 4, 4)), 32, order=3)
    field = np.exp(0.15 * field / field.std())
    image = truth * field + 0.01 * rng.standard_normal(truth.shape)
    path = tmp_path / "t1w.nii.gz"
    nib.save(nib.Nifti1Image(image.astype(np.float32), np.eye(4)), path)
    corrected, _, _ = bias_correct_and_extract(str(path), str(tmp_path), mode="skip")
    out = nib.load(corrected).get_fdata()
    inner = r < 32

    def cv(x):
        return x[inner].std() / x[inner].mean()

    assert cv(out) < cv(image) / 3, (cv(image), cv(out))


def test_segmentation_recovers_three_known_tissues_on_the_full_grid(tmp_path):
    # Concentric tissues at T1w-like contrast (WM 1.0 inside GM 0.6 inside CSF 0.3; 1.5 mm
    # voxels) placed off-centre in a larger field of view, with noise at a tenth of the GM-WM
    # contrast: every class must come back with Dice above 0.95 against its truth, labelled
    # 1 CSF, 2 GM, 3 WM, with probabilities that sum to one inside the mask, on the input grid
    # (Atropos works on the mask's bounding box; the result must be put back where it was).
    from workflows.imaging.anat import segment

    rng = np.random.default_rng(1)
    shape = (96, 80, 72)
    centre = np.array([60.0, 34.0, 40.0])
    r = np.linalg.norm(np.indices(shape) - centre[:, None, None, None], axis=0)
    truth = np.select([r < 14, r < 20, r < 24], [3, 2, 1], 0)
    image = np.choose(truth, [0.0, 0.3, 0.6, 1.0]) + 0.04 * rng.standard_normal(shape)
    image[truth == 0] = 0
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    affine[:3, 3] = (-40, -20, 10)
    t1 = tmp_path / "brain.nii.gz"
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(image.astype(np.float32), affine), t1)
    nib.save(nib.Nifti1Image((truth > 0).astype(np.float32), affine), mask)
    gm, wm, csf, dseg = segment(str(t1), str(mask), str(tmp_path))
    labels = nib.load(dseg)
    assert labels.shape == shape and np.allclose(labels.affine, affine)
    labels = np.asarray(labels.dataobj).round()
    for k in (1, 2, 3):
        a, b = labels == k, truth == k
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.95, k
    probs = [nib.load(p).get_fdata() for p in (csf, gm, wm)]
    assert all(p.shape == shape for p in probs)
    assert np.allclose(sum(probs)[truth > 0], 1, atol=1e-3)
    gm_truth = truth == 2
    assert probs[1][gm_truth].mean() > 0.9 and probs[1][~gm_truth].mean() < 0.05
