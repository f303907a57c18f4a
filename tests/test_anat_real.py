"""The anatomical workflow on a real head T1w (skull, neck; ../shared/data/real-t1w): brain
extraction gives a plausible adult volume and the T1w normalises to MNI152NLin2009cAsym with a
brain-mask Dice above 0.9 against the template's brain."""

import tempfile

import ants
import numpy as np
import pytest

from conftest import shared_data
from workflows.imaging.anat import bias_correct_and_extract, mni_reference_image, normalise


@pytest.fixture(scope="module")
def real_anat(tmp_path_factory):
    t1w = shared_data("real-t1w", "chris_t1.nii.gz")
    # a work folder with spaces: ROBEX's script splits its arguments at spaces (a folder in
    # "PET data/" failed with "Could not create IO object")
    out = tmp_path_factory.mktemp("real_t1w") / "PET data" / "work dir"
    out.mkdir(parents=True)
    # the system's temporary folder made unusable (a file, not a folder): the anatomical stage
    # must keep its tools' temporary files in its own folder (apptainer --containall gives a
    # 64 MB /tmp, too small for ROBEX's copy of the T1w)
    unusable = tmp_path_factory.mktemp("system") / "not-a-folder"
    unusable.write_text("")
    previous, tempfile.tempdir = tempfile.tempdir, str(unusable)
    try:
        extracted = bias_correct_and_extract(str(t1w), str(out))
        normalised = normalise(extracted[0], extracted[2], str(out))
    finally:
        tempfile.tempdir = previous
    return out, extracted, normalised


def test_brain_extraction_volume_is_adult(real_anat):
    # ROBEX's mask and the mask refined by the normalisation (the template's brain brought
    # back) both hold a plausible adult brain, and they agree but for the shell of
    # extra-cerebral CSF that ROBEX keeps (volumes in docs/validation.md)
    _, (_, _, robex), normalised = real_anat
    refined = normalised.brain_mask
    masks = [ants.image_read(m).numpy() > 0.5 for m in (robex, refined)]
    voxel_ml = float(np.prod(ants.image_read(robex).spacing)) / 1000
    for mask in masks:
        assert 1100 < mask.sum() * voxel_ml < 1700
    assert 2 * (masks[0] & masks[1]).sum() / (masks[0].sum() + masks[1].sum()) > 0.93


def test_brain_extraction_works_in_folders_with_spaces(real_anat):
    # the fixture's work folder has spaces: the mask above came from there, and ROBEX's
    # temporary files are gone
    out, (_, _, mask), _ = real_anat
    assert " " in str(out) and mask.startswith(str(out))
    assert not list(out.parent.parent.rglob("tmp-*"))


def test_normalised_brain_mask_matches_the_template(real_anat):
    out, (_, _, mask), normalised = real_anat
    fixed = ants.image_read(mni_reference_image(2.0, str(out)))
    warped = ants.apply_transforms(fixed, ants.image_read(mask), [normalised.t1w2mni],
                                   interpolator="nearestNeighbor").numpy() > 0.5
    template = fixed.numpy() > 5
    dice = 2 * (warped & template).sum() / (warped.sum() + template.sum())
    assert dice > 0.9, dice


def test_simulator_builds_a_phantom_on_a_given_t1w(tmp_path, real_anat, monkeypatch):
    # petbind-simulate --t1w: the atlas pulled into the real head must land on its brain: the
    # phantom's PET-space brain overlaps the T1w brain (ROBEX) with Dice above 0.8, which a
    # wrong transform direction or orientation would not give. The simulator's brain extraction
    # and normalisation are the anatomical stage's, run on this T1w by the fixture above (tested
    # there): they are handed over rather than computed a second time.
    import nibabel as nib
    from scipy import ndimage

    import workflows.imaging.anat
    from bids_app.cli.common import run_cli
    from bids_app.cli.simulate import main as simulate_main

    _, extracted, normalised = real_anat
    monkeypatch.setattr(workflows.imaging.anat, "bias_correct_and_extract",
                        lambda *a, **k: extracted)
    monkeypatch.setattr(workflows.imaging.anat, "normalise", lambda *a, **k: normalised)
    t1w = shared_data("real-t1w", "chris_t1.nii.gz")
    ds = tmp_path / "ds"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "1", "--groups", "a", "--t1w", str(t1w), "--voxel-size", "3",
        "-q"]) == 0
    assert nib.load(ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz").shape == \
        nib.load(t1w).shape
    truth = ds / "derivatives" / "truth" / "sub-01"
    brain_pet = nib.load(truth / "pet" / "sub-01_trc-carfentanil_desc-brain_mask.nii.gz")
    brain_t1 = nib.load(truth / "anat" / "sub-01_desc-brain_mask.nii.gz")
    # T1w brain mask sampled at PET voxel centres
    ijk = np.indices(brain_pet.shape).reshape(3, -1)
    world = brain_pet.affine[:3, :3] @ ijk + brain_pet.affine[:3, 3:4]
    inv = np.linalg.inv(brain_t1.affine)
    coords = inv[:3, :3] @ world + inv[:3, 3:4]
    t1_on_pet = ndimage.map_coordinates(np.asarray(brain_t1.dataobj, dtype=float), coords,
                                        order=0).reshape(brain_pet.shape) > 0.5
    pet_brain = np.asarray(brain_pet.dataobj) > 0
    dice = 2 * (t1_on_pet & pet_brain).sum() / (t1_on_pet.sum() + pet_brain.sum())
    assert dice > 0.8, dice


def test_normalisation_qc_passes_a_real_head_and_flags_one_4mm_off(real_anat, tmp_path):
    # A real head's sulci are its own, not the template's average: its right normalisation
    # must pass the normalised-T1w correlation, which is taken at gyral scale for that reason
    # (unsmoothed, it failed this head; figures in docs/validation.md, quality control).
    # The same normalised T1w moved 4 mm along y, a normalisation that would put the atlas
    # 4 mm off, must be flagged.
    import nibabel as nib
    from scipy import ndimage

    from workflows.imaging.qc import THRESHOLDS, normalisation_metrics

    _, _, normalised = real_anat
    threshold = THRESHOLDS["normalised_t1w_correlation"]
    good = normalisation_metrics(normalised.brain_mask, normalised.t1w_mni,
                                 normalised.mni_affine, str(tmp_path))
    assert not threshold.flags(good["normalised_t1w_correlation"]), good
    img = nib.load(normalised.t1w_mni)
    moved = ndimage.shift(np.asarray(img.dataobj, dtype=np.float32),
                          (0, 4.0 / img.header.get_zooms()[1], 0), order=1)
    moved_path = tmp_path / "t1w_mni_moved.nii.gz"
    nib.save(nib.Nifti1Image(moved, img.affine), moved_path)
    off = normalisation_metrics(normalised.brain_mask, str(moved_path), normalised.mni_affine,
                                str(tmp_path))
    assert threshold.flags(off["normalised_t1w_correlation"]), off
