"""petbind-simulate writes valid BIDS with the truth it claims, reproducibly."""

import json
import subprocess

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from bids_app.bids_io import bids_validator_executable
from conftest import nearest_on_grid, tree_digest
from bids_app.cli.common import run_cli
from bids_app.cli.simulate import main as simulate_main
from workflows.kinetics.frames import FrameTiming, SEED_PROTOCOLS
from workflows.kinetics.compartments import FengInput
from workflows.kinetics.models.srtm_bfm import fit_srtm_bfm, make_basis_set
from workflows.simulation.pet import KineticSettings, tac_tables
from workflows.simulation.receptors import TISSUE_CLASSES

SMALL = ["--voxel-size", "3", "--t1-voxel-size", "2.5", "-q"]


def simulate(out, *args):
    code = run_cli("petbind-simulate", simulate_main, [str(out), *map(str, args)])
    assert code == 0
    return out


def validator_errors(path):
    exe = bids_validator_executable()
    assert exe is not None, "bids-validator-deno is a dependency and must be installed"
    proc = subprocess.run([exe, "--format", "json", str(path)], capture_output=True, text=True,
                          timeout=600)
    report = json.loads(proc.stdout)
    return [i for i in report["issues"]["issues"] if i["severity"] == "error"]


@pytest.fixture(scope="module")
def two_tracer_sessions(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "ds"
    return simulate(out, "--groups", "secure=1,avoidant=1", "--group-column", "attachment",
                    "--tracer", "carfentanil", "--tracer", "madam", "--sessions",
                    "baseline,blocked", "--exposure-column", "dose_mg", "--ec50", "2",
                    "--exposure-range", "1", "9", "--target-model", "2tc",
                    "--seed", "3", *SMALL)


@pytest.fixture(scope="module")
def default_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "ds"
    return simulate(out, "--n-subjects", "2", "--effect", "hippocampus=0.2", "--seed", "5",
                    *SMALL)


def test_bids_validator_finds_no_error(default_small, two_tracer_sessions):
    assert validator_errors(default_small) == []
    assert validator_errors(two_tracer_sessions) == []


def test_participants_groups_and_sidecars_are_what_was_asked(two_tracer_sessions):
    ds = two_tracer_sessions
    participants = pd.read_csv(ds / "participants.tsv", sep="\t")
    assert list(participants["attachment"]) == ["secure", "avoidant"]
    meta = json.loads((ds / "participants.json").read_text())
    assert set(meta["attachment"]["Levels"]) == {"secure", "avoidant"}
    for tracer, blocks in SEED_PROTOCOLS.items():
        timing = FrameTiming.from_protocol(blocks)
        for ses in ("baseline", "blocked"):
            stem = ds / "sub-01" / f"ses-{ses}" / "pet" / f"sub-01_ses-{ses}_trc-{tracer}_pet"
            sidecar = json.loads(stem.with_suffix(".json").read_text())
            assert sidecar["FrameTimesStart"] == timing.start_s.tolist()
            assert sidecar["FrameDuration"] == timing.duration_s.tolist()
            assert sidecar["ImageDecayCorrected"] is True
            assert sidecar["ImageDecayCorrectionTime"] == 0
            assert sidecar["TracerRadionuclide"] == "C11"
            img = nib.load(stem.with_suffix(".nii.gz"))
            assert img.shape[3] == timing.n_frames
    # seed protocols: 69 min carfentanil, 75 min MADAM
    assert FrameTiming.from_protocol(SEED_PROTOCOLS["carfentanil"]).end_min[-1] == 69
    assert FrameTiming.from_protocol(SEED_PROTOCOLS["madam"]).end_min[-1] == 75


def test_blocked_session_has_the_occupancy_its_dose_gives(two_tracer_sessions):
    # Exposures 1 x and 9 x EC50 (2 mg), written to each participant's sessions.tsv (0 at
    # baseline): occupancy = dose / (dose + EC50) = 0.5 and 0.9, so every region's blocked
    # BPND is (1 - occupancy) x its baseline BPND, in both tracers.
    ds = two_tracer_sessions
    truth = pd.read_csv(ds / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    wide = truth.pivot_table(index=["participant_id", "tracer", "region"], columns="session",
                             values="BPND")
    wide = wide[wide["baseline"] > 0]
    doses = {}
    for sub in ("sub-01", "sub-02"):
        table = pd.read_csv(ds / sub / f"{sub}_sessions.tsv", sep="\t").set_index("session_id")
        assert table.loc["ses-baseline", "dose_mg"] == 0
        doses[sub] = table.loc["ses-blocked", "dose_mg"]
    assert sorted(doses.values()) == [2.0, 18.0]
    occupancy = np.array([doses[sub] / (doses[sub] + 2.0)
                          for sub in wide.index.get_level_values("participant_id")])
    np.testing.assert_allclose(wide["blocked"], (1 - occupancy) * wide["baseline"], rtol=1e-5,
                               atol=1e-5)   # the TSV holds 6 significant digits
    recorded = pd.read_csv(ds / "derivatives" / "truth" / "occupancy.tsv", sep="\t")
    blocked = recorded[recorded["session"] == "blocked"].set_index("participant_id")
    np.testing.assert_allclose(blocked["occupancy"], [doses[s] / (doses[s] + 2) for s in
                                                      blocked.index])


def test_truth_files_exist_and_reference_region_is_zero(default_small):
    truth = default_small / "derivatives" / "truth" / "sub-01" / "pet"
    bp = nib.load(truth / "sub-01_trc-carfentanil_meas-BPND_mimap.nii.gz").get_fdata()
    ref = nib.load(truth / "sub-01_trc-carfentanil_label-occipital_desc-reference_mask.nii.gz"
                   ).get_fdata() > 0
    assert ref.sum() > 100
    assert np.median(bp[ref]) == 0.0
    motion = pd.read_csv(truth / "sub-01_trc-carfentanil_desc-truth_motion.tsv", sep="\t")
    assert motion.shape == (16, 6) and np.all(motion.iloc[0] == 0)
    assert motion.iloc[:, :3].abs().to_numpy().max() > 0.1     # the head did move
    mni = nib.load(truth / "sub-01_trc-carfentanil_space-MNI152NLin2009cAsym_meas-BPND_mimap"
                   ".nii.gz")
    assert mni.shape == (97, 115, 97)


def test_pv_matched_truth_loses_most_in_small_hot_regions(default_small):
    # The PV-matched truth is BPND of the noise-free, motion-free scan at the scanner's PSF
    # (2.5 mm here), fitted with the reference tissue's own TAC: partial volume lowers every
    # hot seed ROI, the small ones most (the ventral striatum, about 1 mL, against the
    # thalamus, about 20 mL).
    from workflows.imaging.atlas import SEED_ROIS, region_labels
    truth = default_small / "derivatives" / "truth" / "sub-01" / "pet"
    stem = "sub-01_trc-carfentanil"
    true = nib.load(truth / f"{stem}_meas-BPND_mimap.nii.gz").get_fdata()
    pv = nib.load(truth / f"{stem}_desc-pvmatched_meas-BPND_mimap.nii.gz").get_fdata()
    labels = np.asarray(nib.load(truth / f"{stem}_seg-neuromorphometrics_dseg.nii.gz").dataobj)
    loss = {}
    for roi in SEED_ROIS:
        inside = np.isin(labels, region_labels(roi))
        loss[roi] = 1 - pv[inside].mean() / true[inside].mean()
    assert all(v > 0.03 for v in loss.values()), loss
    assert loss["ventralstriatum"] > 0.15 and loss["ventralstriatum"] > loss["thalamus"] + 0.05
    mni = nib.load(truth / f"{stem}_space-MNI152NLin2009cAsym_desc-pvmatched_meas-BPND_mimap"
                   ".nii.gz").get_fdata()
    true_mni = nib.load(truth / f"{stem}_space-MNI152NLin2009cAsym_meas-BPND_mimap.nii.gz"
                        ).get_fdata()
    brain = true_mni > 0
    assert mni.shape == true_mni.shape and np.corrcoef(mni[brain], true_mni[brain])[0, 1] > 0.85


def test_the_inverse_of_a_subject_warp_maps_mni_points_back():
    # the PV-matched truth reaches MNI through the inverse of the phantom's warp: the points it
    # finds must map forward onto the MNI points asked for
    from workflows.simulation.anatomy import native_grid_around, random_warp
    from workflows.simulation.phantom import Atlas, native_points
    atlas = Atlas()
    warp = random_warp(np.random.default_rng(3), atlas.box)
    grid = native_grid_around(warp, atlas.box, 3.0, margin_mm=16.0)
    native = grid.world_coordinates()[::50]
    found = native_points(warp, warp(native), grid)
    assert np.abs(found - native).max() < 1e-3


def test_effect_lowers_only_the_named_region_in_later_groups(tmp_path):
    out = simulate(tmp_path / "ds", "--groups", "secure=16,avoidant=14,ambivalent=9",
                   "--effect", "hippocampus=0.3", "--derivatives-only", "--seed", "2", "-q")
    truth = pd.read_csv(out / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    means = truth.assign(insecure=truth["group"] != "secure").groupby(
        ["region", "insecure"])["BPND"].mean().unstack()
    ratio = means[True] / means[False]
    # between-subject CV about 11 %: with 16 vs 23 subjects the ratio of means is within +-0.1
    assert ratio["hippocampus"] == pytest.approx(0.7, abs=0.1)
    for region in ("amygdala", "thalamus", "putamen", "acc"):
        assert ratio[region] == pytest.approx(1.0, abs=0.1)
    deriv = out / "derivatives" / "petbind" / "sub-39" / "pet"
    names = sorted(p.name for p in deriv.glob("*.nii.gz"))
    assert names == [
        "sub-39_trc-carfentanil_space-MNI152NLin2009cAsym_desc-sm8_model-SRTM_meas-BPND_mimap"
        ".nii.gz",
        "sub-39_trc-carfentanil_space-MNI152NLin2009cAsym_model-SRTM_meas-BPND_mimap.nii.gz"]
    participants = pd.read_csv(out / "participants.tsv", sep="\t")
    assert participants["group"].value_counts().to_dict() == {"secure": 16, "avoidant": 14,
                                                              "ambivalent": 9}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    args = ["--n-subjects", "1", "--groups", "a", *SMALL]
    a = simulate(tmp_path / "a", *args, "--seed", "9")
    b = simulate(tmp_path / "b", *args, "--seed", "9")
    c = simulate(tmp_path / "c", *args, "--seed", "10")
    assert tree_digest(a) == tree_digest(b)
    assert tree_digest(a) != tree_digest(c)


@pytest.mark.parametrize("target_model", ["srtm", "2tc"])
def test_kinetic_core_recovers_simulated_truth(target_model):
    # The simulator's own noise-free TACs (cortex tissue class) fitted by SRTM-BFM: BPND within
    # 1 % (the two-tissue variant with the default fast k4 = 0.5 /min).
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS["madam"])
    settings = KineticSettings(target_model=target_model)
    tables, grid = tac_tables(timing, settings, 3.0, FengInput())
    cortex = tables[TISSUE_CLASSES.index("cortex")]
    reference = cortex[0]                                     # BPND 0 in cortex = reference
    pick = (grid >= 0.2) & (grid <= 3.0)
    result = fit_srtm_bfm(cortex[pick], make_basis_set(timing, reference, np.ones(17),
                                                       (0.01, 1.0)))
    np.testing.assert_allclose(result["BPND"], grid[pick], rtol=0.01)


def test_bad_options_are_usage_errors(tmp_path, capsys):
    assert run_cli("petbind-simulate", simulate_main,
                   [str(tmp_path), "--effect", "nowhere=0.1"]) == 64
    assert "--effect 'nowhere=0.1'" in capsys.readouterr().err
    assert run_cli("petbind-simulate", simulate_main,
                   [str(tmp_path), "--groups", "a=2,b"]) == 64
    assert run_cli("petbind-simulate", simulate_main,
                   [str(tmp_path), "--deface", "--deface-margin-mm", "-1"]) == 64
    assert "--deface-margin-mm" in capsys.readouterr().err


def test_simulated_pet_gives_back_its_truth_through_petbind_fit(tmp_path):
    # Noise-free, motion-free, no PSF: voxelwise SRTM with the truth reference mask must return
    # the truth native BPND map (voxels of BPND > 0.3; mixed edge voxels aside, within 1 %).
    from bids_app.cli.fit import main as fit_main
    ds = simulate(tmp_path / "ds", "--n-subjects", "1", "--groups", "a", "--noise", "0",
                  "--motion-mm", "0", "--psf-fwhm", "0", "--seed", "4", *SMALL)
    truth = ds / "derivatives" / "truth" / "sub-01" / "pet"
    stem = "sub-01_trc-carfentanil"
    code = run_cli("petbind-fit", fit_main, [
        str(ds / "sub-01" / "pet" / f"{stem}_pet.nii.gz"),
        "--reference-mask", str(truth / f"{stem}_label-occipital_desc-reference_mask.nii.gz"),
        "--brain-mask", str(truth / f"{stem}_desc-brain_mask.nii.gz"),
        "-o", str(tmp_path / "fit" / "sub-01")])
    assert code == 0
    est = nib.load(tmp_path / "fit" / "sub-01_model-SRTM_meas-BPND_mimap.nii.gz").get_fdata()
    tru = nib.load(truth / f"{stem}_meas-BPND_mimap.nii.gz").get_fdata()
    sel = tru > 0.3
    rel = np.abs(est[sel] / tru[sel] - 1)
    assert np.median(rel) < 0.005 and np.percentile(rel, 90) < 0.01
    assert np.corrcoef(est[sel], tru[sel])[0, 1] > 0.95
    # without a PSF there is no partial volume to match: the PV-matched truth is the truth
    pv = nib.load(truth / f"{stem}_desc-pvmatched_meas-BPND_mimap.nii.gz").get_fdata()
    rel = np.abs(pv[sel] / tru[sel] - 1)
    assert np.median(rel) < 0.005 and np.percentile(rel, 90) < 0.01


def test_regional_truth_is_what_the_phantom_regions_hold(tmp_path):
    # Noise-free, motion-free, no PSF: the mean TAC over each region of the truth segmentation,
    # fitted with SRTM against the truth reference region, must give the regional truth table's
    # BPND (within 1 %): every voxel of a region carries that region's kinetics, as the table
    # says (the within-region variation is mild: 5 % SD).
    from workflows.imaging.atlas import SEED_ROIS
    from conftest import pet_metadata
    from workflows.imaging.tacs import extract_tacs, fit_regions
    ds = simulate(tmp_path / "ds", "--n-subjects", "1", "--groups", "a", "--noise", "0",
                  "--motion-mm", "0", "--psf-fwhm", "0", "--seed", "4", *SMALL)
    truth = ds / "derivatives" / "truth" / "sub-01" / "pet"
    stem = "sub-01_trc-carfentanil"
    metadata = pet_metadata(ds / "sub-01" / "pet" / f"{stem}_pet.json")
    tacs = extract_tacs(str(ds / "sub-01" / "pet" / f"{stem}_pet.nii.gz"), metadata,
                        str(truth / f"{stem}_seg-neuromorphometrics_dseg.nii.gz"),
                        str(truth / f"{stem}_label-occipital_desc-reference_mask.nii.gz"),
                        "occipital", str(tmp_path))
    fits = pd.read_csv(fit_regions(tacs, metadata, "occipital", str(tmp_path)),
                       sep="\t").set_index("region")
    table = pd.read_csv(ds / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    table = table[table["participant_id"] == "sub-01"].set_index("region")["BPND"]
    rel = fits.loc[list(SEED_ROIS), "BPND"] / table[list(SEED_ROIS)] - 1
    assert rel.abs().max() < 0.01, rel.round(3).to_dict()


def test_pet_and_t1w_of_a_phantom_show_the_head_in_the_same_place(tmp_path):
    # The PET activity follows the brain: the atlas labels and the unlabelled rim around them
    # (within the template's outline, as the T1w's brain). Were the two outlines different,
    # PET-to-T1w coregistration (mutual information) would be pulled off by the mismatch
    # (docs/validation.md). A tissue image of the
    # truth segmentation and rim, rigidly registered to the T1w, must need no shift (< 0.3 mm).
    from workflows.imaging.atlas import CSF_LABELS, WHITE_MATTER_LABELS
    from workflows.imaging.repeatable import seeded_ants
    ants = seeded_ants()
    ds = simulate(tmp_path / "ds", "--n-subjects", "1", "--groups", "a", "--noise", "0",
                  "--motion-mm", "0", "--psf-fwhm", "0", "--skull-stripped", "--seed", "11",
                  *SMALL)
    seg = nib.load(ds / "derivatives" / "truth" / "sub-01" / "pet" /
                   "sub-01_trc-carfentanil_seg-neuromorphometrics_dseg.nii.gz")
    labels = np.asarray(seg.dataobj).astype(int)
    wm, csf = np.isin(labels, WHITE_MATTER_LABELS), np.isin(labels, CSF_LABELS)
    rim = (nearest_on_grid(ds / "derivatives" / "truth" / "sub-01" / "anat" /
                           "sub-01_desc-brain_mask.nii.gz", seg) > 0) & (labels == 0)
    tissue = np.where(wm, 83.0, np.where(csf, 40.0, np.where(labels > 0, 69.0,
                                                             np.where(rim, 50.0, 0.0))))
    nib.save(nib.Nifti1Image(tissue.astype(np.float32), seg.affine), tmp_path / "tissue.nii.gz")
    t1w = ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    reg = ants.registration(fixed=ants.image_read(str(t1w)),
                            moving=ants.image_read(str(tmp_path / "tissue.nii.gz")),
                            type_of_transform="Rigid", aff_metric="mattes",
                            outprefix=str(tmp_path / "reg_"))
    shift = np.array(ants.read_transform(reg["fwdtransforms"][0]).parameters[9:])
    assert np.linalg.norm(shift) < 0.3, shift


def test_simulated_images_have_the_scanner_resolution_asked_for():
    # A tilted edge between two activities, imaged without motion or noise: across the edge the
    # image must follow a Gaussian edge-spread function (an erf) whose FWHM is the PSF, fine-grid
    # blur and interpolation included. Fitted by least squares on the signed distances of the
    # PET voxel centres to the edge plane (the tilt spreads them over every sub-voxel offset).
    from scipy.optimize import curve_fit
    from scipy.special import erf
    from workflows.imaging.atlas import Grid
    from workflows.simulation.pet import scan_pet
    fine_mm, pet_mm, psf = 1.5, 2.0, 2.5
    fine = Grid((60, 60, 60), np.diag([fine_mm] * 3 + [1.0]))
    normal = np.array([0.9, 0.35, 0.25]) / np.linalg.norm([0.9, 0.35, 0.25])
    centre = np.full(3, 30 * fine_mm)
    distance = (fine.world_coordinates() - centre) @ normal
    activity = np.where(distance > 0, 3.0, 1.0).reshape(fine.shape)[..., None]
    pet_affine = np.diag([pet_mm] * 3 + [1.0])
    pet_affine[:3, 3] = 15.3                  # PET voxel centres off the fine grid's
    pet = Grid((30, 30, 30), pet_affine)
    timing = FrameTiming(np.array([0.0]), np.array([60.0]))
    image = scan_pet(activity.astype(np.float32), fine, pet, timing, np.zeros((1, 6)), psf,
                     0.0, "C11", np.random.default_rng(0))[..., 0].ravel()
    d = (pet.world_coordinates() - centre) @ normal
    near = np.abs(d) < 8
    (sd,), _ = curve_fit(lambda x, s: 2.0 + erf(x / (np.sqrt(2) * s)), d[near], image[near],
                         p0=[1.0])
    assert abs(2.3548 * sd - psf) < 0.1, 2.3548 * sd


def test_the_brains_unlabelled_rim_holds_activity_in_the_pet(tmp_path):
    # The atlas labels stop 1-4 mm inside the brain's outline; that rim is cortex partial-
    # volumed with CSF, so the PET shows it about half as active as cortex (noise-, motion- and
    # PSF-free phantom; a rim voxel's centre lies in the rim, its value is interpolated from
    # the fine grid: between a third and two thirds of cortex), and nothing beyond the brain.
    from workflows.simulation.receptors import tissue_class_of_labels
    ds = simulate(tmp_path / "ds", "--n-subjects", "1", "--groups", "a", "--noise", "0",
                  "--motion-mm", "0", "--psf-fwhm", "0", "--seed", "4", *SMALL)
    truth = ds / "derivatives" / "truth" / "sub-01"
    seg = nib.load(truth / "pet" / "sub-01_trc-carfentanil_seg-neuromorphometrics_dseg.nii.gz")
    labels = np.asarray(seg.dataobj).astype(int)
    in_mask = nearest_on_grid(truth / "anat" / "sub-01_desc-brain_mask.nii.gz", seg) > 0
    rim = in_mask & (labels == 0)
    outside = ~ndimage.binary_dilation(in_mask, iterations=2)
    last = nib.load(ds / "sub-01" / "pet" / "sub-01_trc-carfentanil_pet.nii.gz").dataobj[..., -1]
    last = np.asarray(last)
    cortex = np.median(last[tissue_class_of_labels(labels) == 0])
    assert rim.sum() > 1000
    assert 1 / 3 < np.median(last[rim]) / cortex < 2 / 3
    assert np.abs(last[outside]).max() == 0.0


def test_heads_have_a_face_and_neck_and_deface_removes_the_face_only(tmp_path):
    # The same head plain and defaced: with a face (in front of and below the brain) and a
    # neck, as scanners record heads; defaced, the face is exactly 0 as defacing tools leave
    # it, and the brain and the 10 mm around it that pydeface and quickshear leave are
    # untouched; --deface-margin-mm 4 (a harsher tool) removes face tissue 4-10 mm from the
    # brain too. Regions in MNI mm through the head's affine (its nonlinear part moves points
    # by about 2 mm, far less than these regions' margins).
    def head(name, *options):
        return simulate(tmp_path / name, "--n-subjects", "1", "--groups", "a", "--seed", "8",
                        "--voxel-size", "4", "--t1-voxel-size", "3", "-q", *options)
    plain, defaced = head("plain"), head("defaced", "--deface")
    harsh = head("harsh", "--deface", "--deface-margin-mm", "4")
    t1 = {name: nib.load(ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
          for name, ds in (("plain", plain), ("defaced", defaced), ("harsh", harsh))}
    truth = plain / "derivatives" / "truth" / "sub-01" / "anat"
    brain = nib.load(truth / "sub-01_desc-brain_mask.nii.gz").get_fdata() > 0
    to_mni = np.array(json.loads((truth / "sub-01_from-T1w_to-MNI152NLin2009cAsym_mode-points"
                                  "_xfm.json").read_text())["Affine"])
    ijk = np.indices(brain.shape).reshape(3, -1)
    world = t1["plain"].affine[:3, :3] @ ijk + t1["plain"].affine[:3, 3:4]
    x, y, z = (to_mni[:3, :3] @ world + to_mni[:3, 3:4]).reshape(3, *brain.shape)
    face = (np.abs(x) < 20) & (y > 60) & (y < 80) & (z > -60) & (z < -40)    # cheeks, mouth
    neck = (x ** 2 + (y + 22) ** 2 < 30 ** 2) & (z < -55) & (z > -75)
    a, b = (np.asarray(img.dataobj) for img in (t1["plain"], t1["defaced"]))
    level = np.median(a[brain])
    assert face.sum() > 50 and np.median(a[face]) > 0.2 * level       # a face is there
    assert neck.sum() > 50 and np.median(a[neck]) > 0.2 * level       # and a neck
    assert np.all(b[face] == 0)                                       # defaced: no face
    assert np.array_equal(a[brain], b[brain])                         # the brain as it was
    distance = ndimage.distance_transform_edt(                        # mm from the brain
        ~brain, sampling=t1["plain"].header.get_zooms()[:3])
    c = np.asarray(t1["harsh"].dataobj)
    assert np.array_equal(a[distance <= 10], b[distance <= 10])       # 10 mm kept
    assert np.array_equal(a[distance <= 4], c[distance <= 4])         # harsh: 4 mm kept
    between = (distance > 4) & (distance <= 10) & (a > 0.2 * level)
    assert (between & (c == 0)).sum() > 50                            # and 4-10 mm removed
    labels = nib.load(truth / "sub-01_seg-neuromorphometrics_dseg.nii.gz").get_fdata() > 0
    assert labels.shape == brain.shape and (labels & ~brain).sum() == 0


def test_retest_sessions_vary_by_the_asked_within_subject_cv(tmp_path):
    # --retest-cv 0.1: each session multiplies every region's BPND by 1 + 0.1 e (e standard
    # normal, independent per session), so the relative test-retest difference has SD
    # 0.1 x sqrt(2) = 0.141 (140 regions of 10 participants: sampling SE about 6 %, 20 %
    # allowed), and no systematic change between sessions.
    ds = simulate(tmp_path / "ds", "--n-subjects", "10", "--derivatives-only", "--sessions",
                  "test,retest", "--retest-cv", "0.1", "--seed", "8", "-q")
    truth = pd.read_csv(ds / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    wide = truth.pivot_table(index=["participant_id", "region"], columns="session",
                             values="BPND")
    wide = wide[wide["test"] > 0]
    difference = (wide["retest"] - wide["test"]) / wide["test"]
    assert len(difference) >= 100
    assert difference.std() == pytest.approx(0.1 * np.sqrt(2), rel=0.2)
    assert abs(difference.mean()) < 0.04
