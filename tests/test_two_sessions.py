"""A participant scanned twice, end to end: the participant level on a baseline and a blocked
session of simulated images, then the group level's occupancy analysis on what it wrote,
against the simulator's known occupancy."""

import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.cli.common import run_cli
from bids_app.cli.simulate import main as simulate_main

OCCUPANCY = 0.6
SPACE = "MNI152NLin2009cAsym"


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """One participant, [11C]carfentanil at baseline and with 60 % of the receptors blocked
    (head motion and noise at the simulator's defaults), through the participant level with
    the default voxelwise model, then ``group --analysis occupancy``."""
    root = tmp_path_factory.mktemp("sessions")
    ds, out, work = root / "ds", root / "out", root / "work"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "1", "--groups", "secure=1", "--voxel-size", "3",
        "--t1-voxel-size", "3", "--skull-stripped", "--sessions", "baseline,blocked",
        "--occupancy", str(OCCUPANCY), "--seed", "5", "-q"]) == 0
    proc = subprocess.run([sys.executable, "-m", "bids_app.cli.run", str(ds), str(out),
                           "participant", "-w", str(work), "--nprocs", "2",
                           "--skip-bids-validation"],
                          capture_output=True, text=True, timeout=3000, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    group = subprocess.run([sys.executable, "-m", "bids_app.cli.run", str(ds), str(out), "group",
                            "--analysis", "occupancy", "--baseline-session", "baseline",
                            "--blocked-session", "blocked", "--skip-bids-validation"],
                           capture_output=True, text=True, timeout=1200, env=os.environ.copy())
    assert group.returncode == 0, group.stderr[-3000:]
    return {"ds": ds, "out": out, "folder": out / "group" / "occupancy", "group": group}


def test_each_session_has_its_own_derivatives(sessions):
    # BIDS keeps sessions apart: each session's maps and regional fits under its own ses- folder,
    # named with the ses- entity, made from that session's images only
    for ses in ("baseline", "blocked"):
        pet = sessions["out"] / "sub-01" / f"ses-{ses}" / "pet"
        base = f"sub-01_ses-{ses}_trc-carfentanil"
        for name in (f"{base}_model-SRTM_kinpar.tsv",
                     f"{base}_space-{SPACE}_model-SRTM_meas-BPND_mimap.nii.gz",
                     f"{base}_space-{SPACE}_desc-sm8_model-SRTM_meas-BPND_mimap.nii.gz"):
            assert (pet / name).is_file(), name
        side = json.loads((pet / f"{base}_space-{SPACE}_model-SRTM_meas-BPND_mimap.json")
                          .read_text())
        assert all(f"ses-{ses}" in source for source in side["Sources"]
                   if "_pet." in source), side["Sources"]


def test_occupancy_from_the_participant_level_matches_the_truth(sessions):
    # The drug blocks 60 % of the receptors everywhere, so every region's BPND falls by 60 % and
    # the occupancy plot's slope through the origin is 0.6. Partial-volume loss scales both
    # sessions' BPND alike and cancels in the ratio; what is left is the fits' noise and the two
    # sessions' separate registrations: within 0.05, from the regional fits of both sessions.
    folder = sessions["folder"]
    fit = pd.read_csv(folder / "trc-carfentanil_desc-participant_occupancy.tsv", sep="\t")
    assert list(fit["participant_id"]) == ["sub-01"]
    row = fit.iloc[0]
    assert row["regional_source"] == "regional fits" and row["n_regions"] >= 10
    assert abs(row["occupancy"] - OCCUPANCY) < 0.05, row.to_dict()
    assert row["occupancy_ci_low"] < row["occupancy"] < row["occupancy_ci_high"]
    regions = pd.read_csv(folder / "trc-carfentanil_desc-region_occupancy.tsv", sep="\t")
    plotted = regions[regions["in_plot"]]
    assert (plotted["occupancy_se"] > 0).all()
    assert abs(plotted["occupancy"].median() - OCCUPANCY) < 0.05, plotted


def test_voxelwise_occupancy_map_matches_the_truth(sessions):
    # The smoothed occupancy map, where baseline BPND reaches the threshold (0.3): its median
    # over the brain is the true occupancy within 0.05
    from workflows.imaging.atlas import mni_grid, template_mask_on_grid
    folder = sessions["folder"]
    path = folder / f"sub-01_trc-carfentanil_space-{SPACE}_desc-sm8_model-SRTM_meas-" \
        "occupancy_mimap.nii.gz"
    values = np.asarray(nib.load(path).dataobj)[template_mask_on_grid(mni_grid(2.0))]
    assert np.isfinite(values).mean() > 0.3
    assert abs(np.nanmedian(values) - OCCUPANCY) < 0.05, np.nanmedian(values)


def test_one_participant_skips_the_paired_test_and_says_so(sessions):
    # a test across participants needs two or more: with one, no statistic map is written and
    # the settings, the report and the console say that it was skipped; the occupancy maps are
    # made and shown
    folder = sessions["folder"]
    assert not list(folder.glob("*_statmap.nii.gz"))
    settings = json.loads((folder / "trc-carfentanil_desc-settings.json").read_text())
    assert any("paired test" in item for item in settings["Skipped"]), settings["Skipped"]
    report = (folder / "trc-carfentanil_report.html").read_text()
    assert "paired test" in report and "skipped" in sessions["group"].stderr
    assert "Mean occupancy (smoothed maps)" in report        # the maps are still shown

