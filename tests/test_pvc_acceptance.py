"""Absolute BPND maps on the simulator's default 2 mm PET grid (issue 23's acceptance): the maps
without partial-volume correction against the PV-matched truth, and the RBV-corrected maps
against the receptor truth, in MNI space over the seed study's ten ROIs.

The participant module's phantom has 3 mm voxels for speed; there even the true BPND map,
sampled on the PET grid and brought to MNI through the true warp, misses 5 % in small ROIs
(docs/validation.md, voxelwise PVC, gives the figures), so the 5 % bound on absolute maps is
tested here, on 2 mm voxels."""

import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.cli.common import run_cli
from bids_app.cli.simulate import main as simulate_main
from conftest import mni_roi_means

SPACE = "MNI152NLin2009cAsym"
STEM = "sub-01_trc-carfentanil"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pvc2mm")
    ds, out = root / "ds", root / "out"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "1", "--groups", "a=1", "--voxel-size", "2",
        "--t1-voxel-size", "2", "--motion-mm", "1.5", "--skull-stripped", "--seed", "11",
        "-q"]) == 0
    proc = subprocess.run([sys.executable, "-m", "bids_app.cli.run", str(ds), str(out),
                           "participant", "-w", str(root / "work"), "--nprocs", "2",
                           "--pvc-psf-fwhm", "2.5", "--pvc-method", "rbv",
                           "--model", "srtm-bfm"],
                          capture_output=True, text=True, timeout=3000, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"truth": ds / "derivatives" / "truth" / "sub-01" / "pet",
            "pet": out / "sub-01" / "pet"}


def _volumes_ml():
    """The seed ROIs' volumes (mL) on the 2 mm MNI grid."""
    from workflows.imaging.atlas import SEED_ROIS, atlas_on_grid, mni_grid, region_labels
    labels = atlas_on_grid(mni_grid(2.0))
    return pd.Series({roi: np.isin(labels, region_labels(roi)).sum() * 8e-3
                      for roi in SEED_ROIS})


def _compare(estimate, reference):
    """Each seed ROI's mean of ``estimate`` over that of ``reference``, minus 1, and the voxel
    correlation of the two maps inside the reference's brain."""
    from workflows.imaging.atlas import SEED_ROIS
    rel = mni_roi_means(estimate, SEED_ROIS) / mni_roi_means(reference, SEED_ROIS) - 1
    a = np.nan_to_num(nib.load(estimate).get_fdata())
    b = np.nan_to_num(nib.load(reference).get_fdata())
    brain = b > 0
    return rel, np.corrcoef(a[brain], b[brain])[0, 1]


def test_maps_without_pvc_are_within_5_percent_of_the_pv_matched_truth(run):
    # The PV-matched truth is SRTM on the noise-free, motion-free scan at the scanner's
    # resolution with the reference tissue's own TAC: what a perfect pipeline without PVC
    # estimates. What remains between it and petbind's map (motion, coregistration,
    # normalisation, reference region, noise) is within 5 % in every seed ROI, and the maps
    # correlate above 0.95.
    rel, r = _compare(run["pet"] / f"{STEM}_space-{SPACE}_model-SRTM_meas-BPND_mimap.nii.gz",
                      run["truth"] / f"{STEM}_space-{SPACE}_desc-pvmatched_meas-BPND_mimap.nii.gz")
    assert (rel.abs() < 0.05).all(), rel.round(3).to_dict()
    assert r > 0.95


def test_rbv_maps_are_within_5_percent_of_the_truth_in_rois_over_2_ml(run):
    # Against the receptor truth, the RBV-corrected MNI map's seed ROIs are within 10 %, those
    # over 2 cm3 within 5 %, and the map correlates above 0.9 with the true map; the same map
    # without PVC is more than 4 % low in every seed ROI (the partial-volume loss undone).
    volume = _volumes_ml()
    true = run["truth"] / f"{STEM}_space-{SPACE}_meas-BPND_mimap.nii.gz"
    rel, r = _compare(
        run["pet"] / f"{STEM}_space-{SPACE}_pvc-RBV_model-SRTM_meas-BPND_mimap.nii.gz", true)
    assert (rel.abs() < 0.10).all(), rel.round(3).to_dict()
    assert (rel[volume > 2.0].abs() < 0.05).all(), rel.round(3).to_dict()
    assert r > 0.9
    plain, _ = _compare(run["pet"] / f"{STEM}_space-{SPACE}_model-SRTM_meas-BPND_mimap.nii.gz",
                        true)
    assert (plain < -0.04).all(), plain.round(3).to_dict()
