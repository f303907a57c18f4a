"""petbind-tacs and petbind-fit: outputs named and filled as promised, errors as one line with
the execution-spec exit code."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app import names
from bids_app.cli import fit as fit_cli
from bids_app.cli import tacs as tacs_cli
from bids_app.cli.common import run_cli
from conftest import K1_REF, K2_REF, two_row_image
from workflows.kinetics.compartments import TissueParameters, simulate_frames
from workflows.kinetics.frames import decay_uncorrect

BPND = {"striatum": 2.5, "thalamus": 1.5, "cortex": 0.5}


@pytest.fixture()
def tac_table(tmp_path, carfentanil_timing, reference_tac):
    targets = TissueParameters.from_srtm(K1_REF, K2_REF, np.full(3, 1.0),
                                         np.array(list(BPND.values())), k4=0.5)
    tacs = simulate_frames(carfentanil_timing, targets)
    table = pd.DataFrame({"frame_start": carfentanil_timing.start_s,
                          "frame_end": carfentanil_timing.end_s,
                          "occipital": reference_tac,
                          **{name: tac for name, tac in zip(BPND, tacs)}})
    path = tmp_path / "sub-01_trc-carfentanil_tacs.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


def run_tacs(*args):
    return run_cli("petbind-tacs", tacs_cli.main, [str(a) for a in args])


@pytest.mark.parametrize("model", ["srtm", "srtm-bfm", "srtm2", "mrtm2", "logan-ref"])
def test_tacs_command_recovers_truth(model, tac_table, tmp_path):
    out = tmp_path / "out" / "sub-01_model-X_kinpar.tsv"
    code = run_tacs(tac_table, "--reference", "occipital", "--model", model,
                    "--tracer", "carfentanil", "--weights", "counts", "-o", out)
    assert code == 0
    table = pd.read_csv(out, sep="\t")
    assert {"region", "BPND", "R1", "k2"} <= set(table.columns)
    assert list(table["region"]) == list(BPND)
    np.testing.assert_allclose(table["BPND"], list(BPND.values()), rtol=0.02)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["ReferenceRegion"] == "occipital" and sidecar["Weights"] == "counts"
    if model == "srtm-bfm":
        # Magia's 0.06-0.6 (decay-uncorrected) shifted by lambda of C-11 (0.034 /min)
        assert sidecar["Theta3RangePerMin"] == pytest.approx([0.026, 0.566], abs=1e-3)


def test_standard_error_columns_are_percent_and_match_the_scatter(tmp_path, carfentanil_timing,
                                                                   reference_tac):
    # BEP023 names a parameter's standard error <parameter>-se, in percent of the estimate.
    # With independent Gaussian noise of one SD on every frame and uniform weights, SRTM's
    # asymptotic standard error must describe the scatter of BPND over noise realisations:
    # the median reported SE (back in BPND units) within 25 % of the empirical SD.
    rng = np.random.default_rng(3)
    n = 60
    target = simulate_frames(carfentanil_timing, TissueParameters(      # one tissue: SRTM exact
        np.array([K1_REF]), np.array([K2_REF / 2.5]), np.zeros(1), np.zeros(1)))[0]
    noisy = target + rng.normal(0, 0.03 * target.max(), (n, target.size))
    table = pd.DataFrame({"frame_start": carfentanil_timing.start_s,
                          "frame_end": carfentanil_timing.end_s, "occipital": reference_tac,
                          **{f"r{i}": tac for i, tac in enumerate(noisy)}})
    table.to_csv(tmp_path / "tacs.tsv", sep="\t", index=False)
    out = tmp_path / "kinpar.tsv"
    assert run_tacs(tmp_path / "tacs.tsv", "--reference", "occipital", "--model", "srtm",
                    "--weights", "uniform", "-o", out) == 0
    fits = pd.read_csv(out, sep="\t")
    assert "BPND-se" in fits.columns and "BPND_se" not in fits.columns
    reported = np.median(fits["BPND-se"] / 100 * fits["BPND"].abs())
    assert reported == pytest.approx(fits["BPND"].std(), rel=0.25)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["BPND-se"]["Units"] == "%"


def test_tacs_command_as_installed_console_script(tac_table, tmp_path):
    out = tmp_path / "k.tsv"
    proc = subprocess.run([sys.executable, "-m", "bids_app.cli.tacs", str(tac_table),
                           "--reference", "occipital", "--model", "srtm-bfm",
                           "--theta3-range", "0.01", "1.0", "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(out, sep="\t").shape[0] == 3


@pytest.mark.parametrize("mutate,args,code,message", [
    (None, ["--reference", "nope"], 64, "no column 'nope'"),
    (lambda t: t.assign(occipital=0.0), ["--reference", "occipital"], 65, "zero everywhere"),
    (lambda t: t.assign(frame_end=t.frame_start - 1), ["--reference", "occipital"], 65,
     "must be > 0"),
    (lambda t: t.iloc[[0, 2, 1, 3]], ["--reference", "occipital"], 65, "go backwards"),
    (lambda t: t.drop(columns="frame_end"), ["--reference", "occipital"], 65, "frame_end"),
    (None, ["--reference", "occipital", "--model", "srtm-bfm"], 64, "theta3 range"),
    (None, ["--reference", "occipital", "--weights", "counts"], 64, "radionuclide"),
    (lambda t: t.assign(cortex=np.nan), ["--reference", "occipital"], 65, "NaN"),
])
def test_tacs_command_errors(tac_table, tmp_path, capsys, mutate, args, code, message):
    if mutate is not None:
        mutate(pd.read_csv(tac_table, sep="\t")).to_csv(tac_table, sep="\t", index=False)
    assert run_tacs(tac_table, *args, "-o", tmp_path / "o.tsv") == code
    err = capsys.readouterr().err
    assert message in err and str(tac_table.name) in err or message in err
    assert len(err.strip().splitlines()) == 1 or code == 64


@pytest.fixture()
def one_tissue_table(tmp_path, carfentanil_timing, reference_tac):
    # targets that follow SRTM exactly with k2' = K2_REF (one tissue, V_ND shared)
    bp = np.array([2.5, 1.0, 0.4])
    targets = TissueParameters(np.full(3, K1_REF), K2_REF / (1 + bp), 0 * bp, 0 * bp)
    table = pd.DataFrame({"frame_start": carfentanil_timing.start_s,
                          "frame_end": carfentanil_timing.end_s, "occipital": reference_tac,
                          **dict(zip(("striatum", "thalamus", "cortex"),
                                     simulate_frames(carfentanil_timing, targets)))})
    path = tmp_path / "one_tissue_tacs.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


def test_k2prime_region_estimates_k2prime_by_mrtm(one_tissue_table, tmp_path):
    # Ichise's two-step method: MRTM on the high-binding striatum gives k2' (the simulated
    # reference k2, within 2 %: the trapezoid integral of frame means costs a little), then
    # MRTM2 fixes it in every region and the sidecar says where it came from
    out = tmp_path / "k.tsv"
    assert run_tacs(one_tissue_table, "--reference", "occipital", "--model", "mrtm2",
                    "--k2prime-region", "striatum", "-o", out) == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["K2Prime"] == pytest.approx(K2_REF, rel=0.02)
    assert sidecar["K2PrimeSource"].startswith("MRTM on striatum")
    table = pd.read_csv(out, sep="\t")
    np.testing.assert_allclose(table["k2prime"], sidecar["K2Prime"], rtol=1e-5)  # TSV digits
    np.testing.assert_allclose(table["BPND"], [2.5, 1.0, 0.4], rtol=0.02)


def test_logan_without_k2prime_is_the_textbook_slope(one_tissue_table, tmp_path,
                                                     carfentanil_timing):
    # --k2prime none: y = int C_T / C_T against x = int C_R / C_T over the frames after t*,
    # an unweighted line whose slope is DVR (Logan 1996 without the k2' term), by hand here
    out = tmp_path / "k.tsv"
    assert run_tacs(one_tissue_table, "--reference", "occipital", "--model", "logan-ref",
                    "--k2prime", "none", "-o", out) == 0
    table = pd.read_csv(one_tissue_table, sep="\t")
    t = carfentanil_timing.mid_min
    after = t >= 15

    def integral(c):
        return np.cumsum(np.diff(np.r_[0, t]) * (np.r_[0, c[:-1]] + c) / 2)

    cr, ct = table["occipital"].to_numpy(), table["striatum"].to_numpy()
    slope = np.polyfit(integral(cr)[after] / ct[after], integral(ct)[after] / ct[after], 1)[0]
    result = pd.read_csv(out, sep="\t")
    assert result["BPND"][0] == pytest.approx(slope - 1, rel=1e-5)      # the TSV's digits
    assert np.isnan(result["k2prime"]).all()
    assert json.loads(out.with_suffix(".json").read_text())["K2Prime"] is None


@pytest.mark.parametrize("args,message", [
    (["--model", "mrtm2", "--k2prime-region", "nope"], "no target region 'nope'"),
    (["--model", "mrtm2", "--k2prime", "none"], "only logan-ref runs without it"),
    (["--model", "mrtm2", "--k2prime", "0.1", "--k2prime-region", "striatum"], "not allowed"),
])
def test_k2prime_options_errors(one_tissue_table, tmp_path, capsys, args, message):
    try:                            # argparse's own checks exit from the parser
        code = run_tacs(one_tissue_table, "--reference", "occipital", *args,
                        "-o", tmp_path / "o.tsv")
    except SystemExit as stop:
        code = stop.code
    assert code == 64
    assert message in capsys.readouterr().err


def test_tacs_missing_file_is_66(tmp_path, capsys):
    assert run_tacs(tmp_path / "none.tsv", "--reference", "r", "-o", tmp_path / "o.tsv") == 66
    assert "none.tsv: no such file" in capsys.readouterr().err


# ---------------------------------------------------------------- petbind-fit on an image
@pytest.fixture()
def pet_image(tmp_path, carfentanil_timing, reference_tac):
    """A 12x12x6 phantom: a reference slab (BPND 0) and a BPND gradient from 0.2 to 3, stored
    decay-UNcorrected as a scanner would, with a BIDS sidecar."""
    timing = carfentanil_timing
    shape = (12, 12, 6)
    bp = np.zeros(shape)
    bp[:, :, 2:] = np.linspace(0.2, 3.0, 12)[:, None, None]
    r1 = np.full(shape, 1.0)
    r1[:, :6, 2:] = 1.3
    flat_bp, flat_r1 = bp.reshape(-1), r1.reshape(-1)
    targets = TissueParameters(flat_r1 * K1_REF, flat_r1 * K2_REF / (1 + flat_bp),
                               0 * flat_bp, 0 * flat_bp)
    tacs = simulate_frames(timing, targets)
    data = decay_uncorrect(tacs, timing, "C11").reshape(shape + (16,)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    pet = tmp_path / "sub-01_trc-carfentanil_pet.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), pet)
    pet.with_name("sub-01_trc-carfentanil_pet.json").write_text(json.dumps({
        "TracerName": "carfentanil", "TracerRadionuclide": "C11",
        "FrameTimesStart": timing.start_s.tolist(), "FrameDuration": timing.duration_s.tolist(),
        "ImageDecayCorrected": False, "Units": "Bq/mL"}))
    ref = np.zeros(shape, np.uint8)
    ref[:, :, :2] = 1
    ref_path = tmp_path / "ref_mask.nii.gz"
    nib.save(nib.Nifti1Image(ref, affine), ref_path)
    return pet, ref_path, bp, r1


def test_fit_command_writes_bep023_maps(pet_image, tmp_path):
    pet, ref, bp, r1 = pet_image
    prefix = tmp_path / "deriv" / "sub-01_trc-carfentanil"
    code = run_cli("petbind-fit", fit_cli.main,
                   [str(pet), "--reference-mask", str(ref), "-o", str(prefix)])
    assert code == 0
    for meas in ("BPND", "R1", "k2"):
        path = tmp_path / "deriv" / f"sub-01_trc-carfentanil_model-SRTM_meas-{meas}_mimap.nii.gz"
        assert path.is_file()
        sidecar = json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())
        assert sidecar["Model"] == "SRTM" and sidecar["NumberOfBases"] == 300
    out_bp = nib.load(tmp_path / "deriv" /
                      "sub-01_trc-carfentanil_model-SRTM_meas-BPND_mimap.nii.gz").get_fdata()
    out_r1 = nib.load(tmp_path / "deriv" /
                      "sub-01_trc-carfentanil_model-SRTM_meas-R1_mimap.nii.gz").get_fdata()
    target = bp > 0
    # The phantom's k2a spans 0.15/4 .. 0.15/1.2; carfentanil's range (0.026-0.566) covers it.
    np.testing.assert_allclose(out_bp[target], bp[target], rtol=0.01)
    np.testing.assert_allclose(out_r1[target], r1[target], rtol=0.02)


@pytest.mark.parametrize("model,label,tolerance", [("mrtm2", "MRTM2", 0.01),
                                                   ("srtm2-bfm", "SRTM2", 0.01),
                                                   ("logan-ref", "LoganRef", 0.02)])
def test_fit_command_runs_the_models_that_fix_k2prime(pet_image, tmp_path, model, label,
                                                      tolerance):
    # the phantom's targets follow SRTM with k2' = K2_REF: given that k2', MRTM2 and SRTM2
    # find BPND within 1 % and the Logan plot (after 15 min) within its 2 %
    # approach-to-linearity bias
    pet, ref, bp, _ = pet_image
    prefix = tmp_path / "deriv" / "sub-01_trc-carfentanil"
    assert run_cli("petbind-fit", fit_cli.main,
                   [str(pet), "--reference-mask", str(ref), "--model", model,
                    "--k2prime", str(K2_REF), "-o", str(prefix)]) == 0
    path = prefix.parent / f"sub-01_trc-carfentanil_model-{label}_meas-BPND_mimap.nii.gz"
    out_bp = nib.load(path).get_fdata()
    sidecar = json.loads(path.with_name(path.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["Model"] == label and sidecar["K2Prime"] == K2_REF
    assert sidecar["K2PrimeSource"] == "--k2prime"
    target = bp > 0
    np.testing.assert_allclose(out_bp[target] + 1, bp[target] + 1, rtol=tolerance)


def test_fit_command_writes_standard_error_maps_of_the_linear_models(tmp_path,
                                                                     carfentanil_timing,
                                                                     reference_tac):
    # Logan without k2' on noisy voxel TACs, unweighted: the meas-BPNDse map is the slope's
    # ordinary-regression standard error (numpy's polyfit covariance, residual variance over
    # n - 2 degrees of freedom, computed here by hand) in percent of |BPND|.
    timing = carfentanil_timing
    bp = np.linspace(0.5, 3.0, 10)
    tacs = simulate_frames(timing, TissueParameters(np.full(10, K1_REF), K2_REF / (1 + bp),
                                                    0 * bp, 0 * bp))
    tacs = tacs + np.random.default_rng(1).normal(0, 0.02 * tacs.max(), tacs.shape)
    pet, masks = two_row_image(tmp_path, reference_tac, tacs)
    pet.with_name("pet.json").write_text(json.dumps({
        "TracerRadionuclide": "C11", "FrameTimesStart": timing.start_s.tolist(),
        "FrameDuration": timing.duration_s.tolist(), "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0, "Units": "Bq/mL"}))
    prefix = tmp_path / "out" / "x"
    assert run_cli("petbind-fit", fit_cli.main, [
        str(pet), "--reference-mask", str(masks["ref"]), "--brain-mask", str(masks["brain"]),
        "--model", "logan-ref", "--k2prime", "none", "--weights", "uniform",
        "-o", str(prefix)]) == 0
    se_path = tmp_path / "out" / "x_model-LoganRef_meas-BPNDse_mimap.nii.gz"
    se_map = nib.load(se_path).get_fdata()[1, :, 0]
    assert json.loads(names.sidecar(se_path).read_text())["Units"] == "%"
    t = timing.mid_min
    after = t >= 15

    def integral(c):
        return np.cumsum(np.diff(np.r_[0, t]) * (np.r_[0, c[:-1]] + c) / 2)

    data = nib.load(pet).get_fdata()
    ref = data[0, :, 0].mean(axis=0)
    for voxel, ct in enumerate(data[1, :, 0]):
        (slope, _), cov = np.polyfit(integral(ref)[after] / ct[after],
                                     integral(ct)[after] / ct[after], 1, cov=True)
        expected = 100 * np.sqrt(cov[0, 0]) / abs(slope - 1)
        assert se_map[voxel] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("extra,message", [([], "give --k2prime"),
                                           (["--k2prime", "-1"], "give --k2prime"),
                                           (["--k2prime", "0.1", "--tstar", "-5"], "--tstar")])
def test_fit_command_needs_k2prime_for_the_linear_models(pet_image, tmp_path, capsys, extra,
                                                         message):
    pet, ref, *_ = pet_image
    assert run_cli("petbind-fit", fit_cli.main, [str(pet), "--reference-mask", str(ref),
                                                 "--model", "mrtm2", "-o", str(tmp_path / "x")]
                   + extra) == 64
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_fit_command_errors(pet_image, tmp_path, capsys):
    pet, ref, *_ = pet_image
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((12, 12, 6), np.uint8), np.diag([2.0, 2, 2, 1])), empty)
    args = [str(pet), "--reference-mask", str(empty), "-o", str(tmp_path / "x")]
    assert run_cli("petbind-fit", fit_cli.main, args) == 65
    assert "empty.nii.gz: the reference mask is empty" in capsys.readouterr().err
    args = [str(tmp_path / "missing.nii.gz"), "--reference-mask", str(ref), "-o", "x"]
    assert run_cli("petbind-fit", fit_cli.main, args) == 66
    sidecar = pet.with_name("sub-01_trc-carfentanil_pet.json")
    meta = json.loads(sidecar.read_text())
    meta["FrameDuration"] = meta["FrameDuration"][:-1]
    meta["FrameTimesStart"] = meta["FrameTimesStart"][:-1]
    sidecar.write_text(json.dumps(meta))
    args = [str(pet), "--reference-mask", str(ref), "-o", str(tmp_path / "x")]
    assert run_cli("petbind-fit", fit_cli.main, args) == 65
    assert "image has 16 frames but the sidecar lists 15" in capsys.readouterr().err


def test_an_absurd_tac_value_is_refused_naming_the_region_and_frame(tac_table, tmp_path,
                                                                   capsys):
    # one value of 1e30 among Bq/mL in the thousands: every model would return nonsense
    table = pd.read_csv(tac_table, sep="\t")
    table.loc[5, "thalamus"] = 1e30
    table.to_csv(tac_table, sep="\t", index=False)
    assert run_tacs(tac_table, "--reference", "occipital", "-o", tmp_path / "o.tsv") == 65
    err = capsys.readouterr().err.strip()
    assert "'thalamus' is 1e+30 in the frame starting at 540 s" in err
    assert len(err.splitlines()) == 1


def test_broken_voxels_are_left_out_and_change_nothing_else(pet_image, tmp_path, capsys):
    # One voxel of 1e30 and one with a NaN frame: both are left out of the fit and written as
    # NaN; every other voxel gets what it gets without them, within 1e-4 (the frame weights
    # come from the mean TAC of the voxels fitted, which a 1e30 voxel would otherwise rule).
    pet, ref, *_ = pet_image
    clean = tmp_path / "clean"
    assert run_cli("petbind-fit", fit_cli.main, [str(pet), "--reference-mask", str(ref),
                                                 "-o", str(clean)]) == 0
    img = nib.load(pet)
    data = np.asarray(img.dataobj).copy()
    data[3, 4, 4, 7] = 1e30
    data[5, 5, 3, 10] = np.nan
    broken = tmp_path / "broken_pet.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), broken)
    broken.with_name("broken_pet.json").write_text(pet.with_name(
        "sub-01_trc-carfentanil_pet.json").read_text())
    out = tmp_path / "broken"
    assert run_cli("petbind-fit", fit_cli.main, [str(broken), "--reference-mask", str(ref),
                                                 "-o", str(out)]) == 0
    assert "2 voxel(s) with NaN or absurd values were left out" in capsys.readouterr().err
    name = "_model-SRTM_meas-BPND_mimap.nii.gz"
    a = nib.load(f"{clean}{name}").get_fdata()
    b = nib.load(f"{out}{name}").get_fdata()
    bad = np.zeros(a.shape, bool)
    bad[3, 4, 4] = bad[5, 5, 3] = True
    assert np.isnan(b[bad]).all()
    np.testing.assert_allclose(b[~bad], a[~bad], rtol=1e-4, atol=1e-6)
    side = json.loads(open(f"{out}_model-SRTM_meas-BPND_mimap.json").read())
    assert side["NumberOfVoxelsExcluded"] == 2


def test_a_reference_of_nan_voxels_is_named_as_such(pet_image, tmp_path, capsys):
    pet, ref, *_ = pet_image
    img = nib.load(pet)
    data = np.asarray(img.dataobj).copy()
    data[:, :, :2] = np.nan                           # the reference slab
    nan_pet = tmp_path / "nan_pet.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), nan_pet)
    nan_pet.with_name("nan_pet.json").write_text(pet.with_name(
        "sub-01_trc-carfentanil_pet.json").read_text())
    assert run_cli("petbind-fit", fit_cli.main, [str(nan_pet), "--reference-mask", str(ref),
                                                 "-o", str(tmp_path / "x")]) == 65
    assert "every voxel of the reference region has NaN or absurd values" in \
        capsys.readouterr().err
