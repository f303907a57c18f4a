"""Voxelwise MRTM2 and Logan reference plot: the truth of the compartment simulator, the
regional fit of the same model on the same TAC, and the textbook Logan slope."""

from pathlib import Path

import numpy as np
import pytest

from conftest import K1_REF, K2_REF, two_row_image
from workflows.kinetics.compartments import TissueParameters, add_counts_noise, simulate_frames
from workflows.kinetics.convolution import running_integral
from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import MODELS, voxelwise_models

BPND = np.array([0.3, 1.0, 2.5, 4.0])
RANGE = (0.02, 0.6)
SETTINGS = {"mrtm2": ModelSettings(k2prime_per_min=K2_REF),
            "logan-ref": ModelSettings(k2prime_per_min=K2_REF, tstar_min=15.0),
            "srtm2-bfm": ModelSettings(k2prime_per_min=K2_REF, theta3_range_per_min=RANGE),
            "srtm-bfm": ModelSettings(theta3_range_per_min=RANGE)}


@pytest.fixture(scope="module")
def one_tissue_tacs(carfentanil_timing):
    # one-tissue targets with V_ND shared with the reference follow SRTM exactly, and
    # k2' = K2_REF: every model of the family must find BPND from them
    r1 = np.array([0.8, 1.0, 1.2, 1.4])
    targets = TissueParameters(r1 * K1_REF, r1 * K2_REF / (1 + BPND), 0 * r1, 0 * r1)
    return simulate_frames(carfentanil_timing, targets)


@pytest.fixture(scope="module")
def noisy_tacs(carfentanil_timing, one_tissue_tacs):
    rng = np.random.default_rng(3)
    return np.array([add_counts_noise(tac, carfentanil_timing, "C11", 4.0, rng)
                     for tac in np.repeat(one_tissue_tacs, 25, axis=0)])


def test_the_registry_lists_the_linear_models_as_voxelwise():
    assert {"srtm-bfm", "srtm2-bfm", "mrtm2", "logan-ref"} <= set(voxelwise_models())


@pytest.mark.parametrize("model", ["mrtm2", "srtm2-bfm"])
def test_k2prime_models_recover_bpnd_of_noise_free_tacs(model, carfentanil_timing,
                                                        reference_tac, one_tissue_tacs):
    # MRTM2 is SRTM's operational equation integrated over time, SRTM2 SRTM with k2' known:
    # both exact for these targets but for the trapezoid integral of frame means (MRTM2) or
    # the basis grid, 300 k2a values 1.1 % apart (SRTM2): under 1 % here
    fit = MODELS[model].fit_voxelwise(carfentanil_timing, reference_tac, one_tissue_tacs,
                                      np.ones(16), SETTINGS[model])
    np.testing.assert_allclose(fit["BPND"], BPND, rtol=0.01)
    np.testing.assert_allclose(fit["R1"], [0.8, 1.0, 1.2, 1.4], rtol=0.01)
    assert not fit.on_bound.any()


def test_srtm2_bfm_agrees_with_the_nonlinear_srtm2_fit(carfentanil_timing, reference_tac,
                                                      noisy_tacs):
    # two ways to the same least-squares optimum: a search over 300 basis functions and a
    # bounded trust-region fit from many starts; they differ by the basis grid's step only
    weights = carfentanil_timing.duration_s / carfentanil_timing.duration_s.max()
    bfm = MODELS["srtm2-bfm"].fit_voxelwise(carfentanil_timing, reference_tac, noisy_tacs,
                                            weights, SETTINGS["srtm2-bfm"])
    nonlinear = MODELS["srtm2"].fit_regional(carfentanil_timing, reference_tac, noisy_tacs,
                                             weights, SETTINGS["srtm2-bfm"])
    inside = ~bfm.on_bound
    assert inside.mean() > 0.9
    np.testing.assert_allclose(bfm["BPND"][inside] + 1, nonlinear["BPND"][inside] + 1,
                               rtol=0.005)


def test_fixing_k2prime_lowers_the_scatter_of_bpnd(carfentanil_timing, reference_tac,
                                                  noisy_tacs):
    # SRTM2 estimates one parameter less than SRTM from the same frames: on the same noisy
    # TACs its BPND scatters less, most for the low-binding targets (docs/validation.md)
    weights = np.ones(16)
    sd = {name: MODELS[name].fit_voxelwise(carfentanil_timing, reference_tac, noisy_tacs,
                                           weights, SETTINGS[name])["BPND"].reshape(4, 25)
          .std(axis=1) for name in ("srtm-bfm", "srtm2-bfm")}
    assert np.all(sd["srtm2-bfm"] < sd["srtm-bfm"]), sd


def test_logan_voxelwise_recovers_dvr_of_noise_free_tacs(carfentanil_timing, reference_tac,
                                                         one_tissue_tacs):
    # the Logan plot is linear only once the target has equilibrated with the reference; for
    # carfentanil after 15 min its slope is DVR within 2 % for BPND up to 4 (the known
    # approach-to-linearity bias, largest for the slowest, highest-binding target)
    fit = MODELS["logan-ref"].fit_voxelwise(carfentanil_timing, reference_tac, one_tissue_tacs,
                                            None, SETTINGS["logan-ref"])
    np.testing.assert_allclose(fit["BPND"] + 1, BPND + 1, rtol=0.02)


@pytest.mark.parametrize("model", ["mrtm2", "logan-ref"])
def test_voxelwise_fit_equals_the_regional_fit(model, carfentanil_timing, reference_tac,
                                               noisy_tacs):
    # the closed-form normal equations for many TACs and the per-TAC least squares (QR) give
    # the same estimates and standard errors
    weights = carfentanil_timing.duration_s / carfentanil_timing.duration_s.max()
    voxel = MODELS[model].fit_voxelwise(carfentanil_timing, reference_tac, noisy_tacs, weights,
                                        SETTINGS[model])
    region = MODELS[model].fit_regional(carfentanil_timing, reference_tac, noisy_tacs, weights,
                                        SETTINGS[model])
    for name in MODELS[model].maps:
        np.testing.assert_allclose(voxel[name], region[name], rtol=1e-7)
    np.testing.assert_allclose(voxel.standard_errors["BPND"], region.standard_errors["BPND"],
                               rtol=1e-6)
    np.testing.assert_array_equal(voxel.n_frames_fitted, region.n_frames_fitted)


def test_logan_equals_the_textbook_slope(carfentanil_timing, reference_tac, noisy_tacs):
    # Logan et al. 1996, eq. 2, by hand: x = (int C_R + C_R / k2') / C_T, y = int C_T / C_T
    # over the frames after t*, an unweighted straight line; DVR is its slope
    t = carfentanil_timing.mid_min
    after = t >= 15.0
    cr, ct = reference_tac, noisy_tacs[7]
    int_r = np.concatenate([[0], np.cumsum(np.diff(np.r_[0, t]) * (np.r_[0, cr[:-1]] + cr) / 2)])
    int_t = np.concatenate([[0], np.cumsum(np.diff(np.r_[0, t]) * (np.r_[0, ct[:-1]] + ct) / 2)])
    x = (int_r[1:] + cr / K2_REF)[after] / ct[after]
    y = int_t[1:][after] / ct[after]
    slope = np.polyfit(x, y, 1)[0]
    fit = MODELS["logan-ref"].fit_voxelwise(carfentanil_timing, reference_tac, noisy_tacs[7:8],
                                            None, SETTINGS["logan-ref"])
    assert fit["BPND"][0] == pytest.approx(slope - 1, rel=1e-9)
    assert running_integral(carfentanil_timing, ct)[-1] == pytest.approx(int_t[-1])


def test_logan_leaves_out_a_voxel_without_activity_rather_than_failing(
        carfentanil_timing, reference_tac, one_tissue_tacs):
    tacs = np.vstack([one_tissue_tacs[:1], np.zeros((1, 16))])
    fit = MODELS["logan-ref"].fit_voxelwise(carfentanil_timing, reference_tac, tacs, None,
                                            SETTINGS["logan-ref"])
    assert np.isfinite(fit["BPND"][0]) and np.isnan(fit["BPND"][1])
    assert fit.n_frames_fitted[1] == 0


def test_the_participant_graph_takes_k2prime_from_the_regional_fits(carfentanil_timing,
                                                                   reference_tac, tmp_path):
    # the map node of a model that fixes k2' gets it as the median k2/R1 of the regional SRTM
    # fits (regions on a bound left out) and says so in the sidecar; the maps follow the truth
    import json

    import nibabel as nib
    import pandas as pd

    from workflows.base import init_pet_wf
    from workflows.imaging.voxelwise import fit_maps
    from workflows.kinetics.metadata import PETMetadata

    bp = np.linspace(0.2, 3.0, 8)
    targets = TissueParameters(np.full(8, K1_REF), K2_REF / (1 + bp), 0 * bp, 0 * bp)
    pet, masks = two_row_image(tmp_path, reference_tac,
                               simulate_frames(carfentanil_timing, targets))
    kinpar = tmp_path / "kinpar.tsv"           # k2/R1: 0.15, 0.15, 0.16 and one on a bound
    pd.DataFrame({"region": list("abcd"), "R1": [1.0, 1.2, 1.0, 1.0],
                  "k2": [0.15, 0.18, 0.16, 0.9], "on_bound": [False, False, False, True]}
                 ).to_csv(kinpar, sep="\t", index=False)
    metadata = PETMetadata.from_sidecar({
        "TracerRadionuclide": "C11", "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 0,
        "FrameTimesStart": carfentanil_timing.start_s.tolist(),
        "FrameDuration": carfentanil_timing.duration_s.tolist()}, n_frames=16).as_record()
    paths, se_paths, info = fit_maps(str(pet), metadata, str(masks["ref"]), str(masks["brain"]),
                                     "mrtm2", {}, str(tmp_path), str(kinpar))
    sidecar = json.loads(open(info).read())
    assert sidecar["K2Prime"] == pytest.approx(0.15)
    assert "median k2/R1 of the regional SRTM fits (3 regions" in sidecar["K2PrimeSource"]
    np.testing.assert_allclose(nib.load(paths[0]).get_fdata()[1, :, 0], bp, rtol=0.01)

    graph = init_pet_wf(metadata=metadata, reference_region="occipital",
                        models=["srtm-bfm", "mrtm2"], k2a_range=(0.02, 0.6), n_bases=50,
                        smoothing_fwhm_mm=8.0, mni_voxel_mm=2.0, pvc_psf_fwhm_mm=None,
                        omp_nthreads=1, name="scan")
    flat = graph._create_flat_graph()
    kinpar_into = {(u.fullname, v.fullname) for u, v, d in flat.edges(data=True)
                   if any("kinpar" in str(c) for c in d.get("connect", []))}
    assert ("scan.tacs_wf.outputnode", "scan.voxelwise_mrtm2_wf.inputnode") in kinpar_into
    assert ("scan.voxelwise_mrtm2_wf.inputnode", "scan.voxelwise_mrtm2_wf.mrtm2") in kinpar_into
    assert not any("srtm_bfm" in v for _, v in kinpar_into)
    # MRTM2 gives standard errors of its three maps; they reach the scan's outputs
    assert [Path(p).name for p in se_paths] == ["MRTM2_BPNDse.nii.gz", "MRTM2_R1se.nii.gz",
                                                "MRTM2_k2se.nii.gz"]
    se_into = {(u.fullname, v.fullname) for u, v, d in flat.edges(data=True)
               if any("se_maps" in str(c) for c in d.get("connect", []))}
    assert ("scan.voxelwise_mrtm2_wf.outputnode", "scan.outputnode") in se_into


def test_quality_control_reads_every_voxelwise_model(tmp_path):
    # With several voxelwise models, the share of voxels fitted on a bound is the largest over
    # them: a second model with a third of its voxels on theta3's bound flags the scan even
    # though the first model's 2 % do not (range: at most 10 %).
    import json

    import nibabel as nib
    import pandas as pd

    from workflows.imaging.qc import THRESHOLDS, kinetic_metrics, qc_table
    ref = tmp_path / "ref.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.eye(4)), ref)
    kinpar = tmp_path / "kinpar.tsv"
    pd.DataFrame({"region": ["a", "b"], "on_bound": [False, False]}).to_csv(kinpar, sep="\t")
    infos = []
    for name, share in (("srtm", 0.02), ("srtm2", 0.33)):
        infos.append(tmp_path / f"{name}.json")
        infos[-1].write_text(json.dumps({"FractionOfVoxelsOnTheta3Bound": share}))
    first_only = kinetic_metrics(str(ref), str(kinpar), [str(infos[0])])
    both = kinetic_metrics(str(ref), str(kinpar), [str(i) for i in infos])
    assert first_only["voxels_on_bound_fraction"] == 0.02
    assert both["voxels_on_bound_fraction"] == 0.33
    assert both["reference_volume_ml"] == 1.0                       # 1000 voxels of 1 mm^3
    table = qc_table(both, THRESHOLDS).set_index("metric")
    assert table.loc["voxels_on_bound_fraction", "flagged"]


def in_order(data, mask, order):
    """data[mask] with the voxels taken in ``order`` ("C": numpy's own)."""
    return data.reshape(-1, data.shape[3], order=order)[mask.ravel(order=order)]


def test_voxel_tacs_are_the_masked_voxels_in_the_images_order_and_go_back_in_place():
    # petbind gathers an image's masked TACs frame by frame in the order the image stores its
    # voxels: numpy's data[mask] for a row-major image (and a strided view), column-major order
    # for a column-major one (NIfTI's); scatter puts values back where they came from
    from workflows.imaging.voxelwise import memory_order, scatter, voxel_tacs
    rng = np.random.default_rng(0)
    base = rng.random((6, 7, 8, 5))
    mask = rng.random((6, 7, 8)) < 0.3
    for data, order in ((np.ascontiguousarray(base), "C"), (np.asfortranarray(base), "F"),
                        (base.astype(np.float32), "C"),
                        (np.asfortranarray(base, dtype=np.float32), "F")):
        got = voxel_tacs(data, mask)
        assert memory_order(data) == order and got.dtype == data.dtype
        assert np.array_equal(got, in_order(data, mask, order))
        back = scatter(mask, got[:, 2], order, dtype=data.dtype)
        assert np.array_equal(back, np.where(mask, data[..., 2], 0))
    strided = base[:, ::2]
    assert np.array_equal(voxel_tacs(strided, mask[:, ::2]), strided[mask[:, ::2]])


def test_voxel_tacs_reusing_the_image_memory_are_still_the_masked_voxels():
    # With reuse, frame f's voxels are written where frames up to f were: the result must still
    # be data[mask] (with every voxel selected the writes overlap the frame being read), held
    # in the image's own memory.
    from workflows.imaging.voxelwise import voxel_tacs
    rng = np.random.default_rng(1)
    base = np.asfortranarray(rng.random((6, 7, 8, 5)).astype(np.float32))
    for mask in (rng.random((6, 7, 8)) < 0.3, rng.random((6, 7, 8)) < 0.97,
                 np.ones((6, 7, 8), bool)):
        data = base.copy(order="F")
        got = voxel_tacs(data, mask, reuse=True)
        assert np.array_equal(got, in_order(base, mask, "F")) and np.shares_memory(got, data)
    c_order = np.ascontiguousarray(base)        # not column-major: a new array, input kept
    got = voxel_tacs(c_order, mask, reuse=True)
    assert np.array_equal(got, base[mask]) and not np.shares_memory(got, c_order)
