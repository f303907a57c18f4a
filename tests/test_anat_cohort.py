"""Brain extraction and normalisation on simulated whole heads (face, neck, skull, scalp) where
ROBEX alone goes wrong: the brain mask and the atlas labels brought back by the normalisation
must match the simulator's truth (issue 19's failure: frontal brain cut, labels misplaced)."""

import ants
import nibabel as nib
import numpy as np
import pytest

from bids_app import names
from bids_app.cli.common import run_cli
from bids_app.cli.simulate import main as simulate_main
from workflows.imaging.anat import bias_correct_and_extract, normalise
from workflows.imaging.atlas import SEED_ROIS, atlas_path, region_labels


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


# Heads on which ROBEX's own mask misses the truth: frontal brain cut away (seed 1) or scalp
# kept (seed 4); the figures are in docs/validation.md.
HEADS = [(1, False), (4, False)]


@pytest.fixture(scope="module", params=HEADS, ids=lambda h: f"seed{h[0]}{'-defaced' * h[1]}")
def head(request, tmp_path_factory):
    seed, defaced = request.param
    root = tmp_path_factory.mktemp(f"head{seed}")
    ds = root / "ds"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "1", "--groups", "a", "--seed", str(seed), "--voxel-size", "4",
        "--t1-voxel-size", "2", "-q"] + (["--deface"] if defaced else [])) == 0
    t1w = ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    n4, _, robex_mask = bias_correct_and_extract(str(t1w), str(root), mode="force")
    normalised = normalise(n4, robex_mask, str(root))
    labels = ants.apply_transforms(ants.image_read(str(t1w)), ants.image_read(str(atlas_path())),
                                   [normalised.mni2t1w],
                                   interpolator="genericLabel").numpy().round().astype(int)
    truth = ds / "derivatives" / "truth" / "sub-01" / "anat"
    return {"mask": nib.load(normalised.brain_mask).get_fdata() > 0,
            "labels": labels,
            "true_mask": nib.load(truth / names.anat_name("01", None, "mask", desc="brain")
                                  ).get_fdata() > 0,
            "true_labels": np.asarray(nib.load(truth / names.anat_name(
                "01", None, "dseg", seg="neuromorphometrics")).dataobj).astype(int)}


def test_brain_mask_matches_the_true_brain(head):
    # the head's own anatomy drives the warp, and the template's brain comes back through it:
    # the mask keeps the frontal brain and leaves out the CSF, skull and scalp
    assert dice(head["mask"], head["true_mask"]) >= 0.95


def test_seed_rois_land_on_their_true_labels(head):
    # each of the seed study's ten ROIs, taken from MNI to the T1w by the normalisation,
    # overlaps the simulator's true labels (on the 2 mm T1w grid, finer than the PET's)
    overlap = {roi: dice(np.isin(head["labels"], region_labels(roi)),
                         np.isin(head["true_labels"], region_labels(roi))) for roi in SEED_ROIS}
    assert min(overlap.values()) >= 0.8, overlap
