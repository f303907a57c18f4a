"""Regional models recover the truth, and their standard errors describe their scatter."""

import numpy as np
import pytest

from conftest import K1_REF, K2_REF
from workflows.kinetics.compartments import TissueParameters, add_counts_noise, simulate_frames
from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import MODELS
from workflows.kinetics.models.srtm import estimate_k2prime

BPND = np.array([0.3, 1.0, 2.5])
NONE = ModelSettings()


@pytest.fixture(scope="module")
def clean_tacs(carfentanil_timing):
    targets = TissueParameters.from_srtm(K1_REF, K2_REF, np.full(3, 1.2), BPND, k4=0.5)
    return simulate_frames(carfentanil_timing, targets)


def test_srtm_nonlinear_recovers_truth(carfentanil_timing, reference_tac, clean_tacs):
    fit = MODELS["srtm"].fit_regional(carfentanil_timing, reference_tac, clean_tacs,
                                      np.ones(16), NONE)
    np.testing.assert_allclose(fit["BPND"], BPND, rtol=0.01)
    assert not fit.on_bound.any()


def test_srtm_recovers_every_parameter_of_a_one_tissue_target(carfentanil_timing,
                                                              reference_tac):
    # One-tissue targets with V_T = V_ND (1 + BPND) follow SRTM exactly: R1, k2 and
    # k2' = k2 / R1 (the reference region's k2, shared V_ND) are all known.
    r1 = np.array([0.9, 1.2, 1.4])
    targets = TissueParameters(r1 * K1_REF, r1 * K2_REF / (1 + BPND), 0 * r1, 0 * r1)
    tacs = simulate_frames(carfentanil_timing, targets)
    fit = MODELS["srtm"].fit_regional(carfentanil_timing, reference_tac, tacs, np.ones(16), NONE)
    np.testing.assert_allclose(fit["BPND"], BPND, rtol=0.005)
    np.testing.assert_allclose(fit["R1"], r1, rtol=0.005)
    # k2 is the rate most sensitive to how the 1-min early frames sample the input peak:
    # the piecewise-linear reference curve costs about 2 % here.
    np.testing.assert_allclose(fit["k2"], r1 * K2_REF, rtol=0.03)
    assert estimate_k2prime(fit) == pytest.approx(K2_REF, rel=0.03)


@pytest.mark.parametrize("model", ["srtm2", "mrtm2", "logan-ref"])
def test_k2prime_models_recover_truth(model, carfentanil_timing, reference_tac, clean_tacs):
    settings = ModelSettings(k2prime_per_min=K2_REF, tstar_min=15 if model == "logan-ref"
                             else None)
    weights = None if model == "logan-ref" else np.ones(16)
    fit = MODELS[model].fit_regional(carfentanil_timing, reference_tac, clean_tacs, weights,
                                     settings)
    np.testing.assert_allclose(fit["BPND"], BPND, rtol=0.015)
    assert fit.column("k2prime") == pytest.approx(K2_REF)


def test_standard_errors_describe_the_scatter(carfentanil_timing, reference_tac, clean_tacs):
    # Over noise realisations the SD of the SRTM estimate should match the reported SE
    # (Jacobian-based, a first-order approximation): agree within a factor of 1.5.
    rng = np.random.default_rng(5)
    noisy = np.array([add_counts_noise(clean_tacs[1], carfentanil_timing, "C11", 2.0, rng)
                      for _ in range(60)])
    fit = MODELS["srtm"].fit_regional(carfentanil_timing, reference_tac, noisy, np.ones(16),
                                      NONE, n_random_starts=0)
    ratio = np.std(fit["BPND"]) / np.median(fit.standard_errors["BPND"])
    assert 1 / 1.5 < ratio < 1.5, ratio


def test_fits_on_a_bound_are_flagged(carfentanil_timing, reference_tac):
    # A target with BPND 10 cannot be fitted within BPND <= 8: the fit must say so.
    targets = TissueParameters.from_srtm(K1_REF, K2_REF, [1.0], [10.0], k4=0.5)
    tac = simulate_frames(carfentanil_timing, targets)
    fit = MODELS["srtm"].fit_regional(carfentanil_timing, reference_tac, tac, np.ones(16), NONE)
    assert fit.on_bound[0] and "BPND on its bound" in fit.warnings[0][0]


def test_logan_needs_frames_after_tstar(carfentanil_timing, reference_tac, clean_tacs):
    with pytest.raises(ValueError, match="fewer than 3 frames"):
        MODELS["logan-ref"].fit_regional(carfentanil_timing, reference_tac, clean_tacs[:1],
                                         None, ModelSettings(k2prime_per_min=K2_REF,
                                                             tstar_min=65))


def test_models_that_fix_k2prime_refuse_to_run_without_it(carfentanil_timing, reference_tac,
                                                          clean_tacs):
    for name in ("srtm2", "mrtm2", "logan-ref"):
        with pytest.raises(ValueError, match="positive k2'"):
            MODELS[name].fit_regional(carfentanil_timing, reference_tac, clean_tacs,
                                      np.ones(16), NONE)
