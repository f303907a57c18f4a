"""Regional models recover the truth, and their standard errors describe their scatter."""

import numpy as np
import pytest

from conftest import K1_REF, K2_REF
from workflows.kinetics.compartments import TissueParameters, add_counts_noise, simulate_frames
from workflows.kinetics.regional import (estimate_k2prime, fit_logan_ref, fit_mrtm2, fit_srtm,
                                         fit_srtm2)

BPND = np.array([0.3, 1.0, 2.5])


@pytest.fixture(scope="module")
def clean_tacs(carfentanil_timing):
    targets = TissueParameters.from_srtm(K1_REF, K2_REF, np.full(3, 1.2), BPND, k4=0.5)
    return simulate_frames(carfentanil_timing, targets)


def test_srtm_nonlinear_recovers_truth(carfentanil_timing, reference_tac, clean_tacs):
    w = np.ones(16)
    fits = [fit_srtm(carfentanil_timing, reference_tac, tac, w) for tac in clean_tacs]
    np.testing.assert_allclose([f.bpnd for f in fits], BPND, rtol=0.01)
    assert not any(f.on_bound for f in fits)


def test_srtm_recovers_every_parameter_of_a_one_tissue_target(carfentanil_timing,
                                                              reference_tac):
    # One-tissue targets with V_T = V_ND (1 + BPND) follow SRTM exactly: R1, k2 and
    # k2' = k2 / R1 (the reference region's k2, shared V_ND) are all known.
    r1 = np.array([0.9, 1.2, 1.4])
    targets = TissueParameters(r1 * K1_REF, r1 * K2_REF / (1 + BPND), 0 * r1, 0 * r1)
    tacs = simulate_frames(carfentanil_timing, targets)
    fits = [fit_srtm(carfentanil_timing, reference_tac, tac, np.ones(16)) for tac in tacs]
    np.testing.assert_allclose([f.bpnd for f in fits], BPND, rtol=0.005)
    np.testing.assert_allclose([f.r1 for f in fits], r1, rtol=0.005)
    # k2 is the rate most sensitive to how the 1-min early frames sample the input peak:
    # the piecewise-linear reference curve costs about 2 % here.
    np.testing.assert_allclose([f.k2_per_min for f in fits], r1 * K2_REF, rtol=0.03)
    assert estimate_k2prime(fits) == pytest.approx(K2_REF, rel=0.03)


@pytest.mark.parametrize("model", ["srtm2", "mrtm2", "logan"])
def test_k2prime_models_recover_truth(model, carfentanil_timing, reference_tac, clean_tacs):
    w = np.ones(16)
    for tac, truth in zip(clean_tacs, BPND):
        if model == "srtm2":
            fit = fit_srtm2(carfentanil_timing, reference_tac, tac, w, K2_REF)
        elif model == "mrtm2":
            fit = fit_mrtm2(carfentanil_timing, reference_tac, tac, w, K2_REF)
        else:
            fit = fit_logan_ref(carfentanil_timing, reference_tac, tac, K2_REF, tstar_min=15)
        assert fit.bpnd == pytest.approx(truth, rel=0.015)


def test_standard_errors_describe_the_scatter(carfentanil_timing, reference_tac, clean_tacs):
    # Over noise realisations the SD of the SRTM estimate should match the reported SE
    # (Jacobian-based, a first-order approximation): agree within a factor of 1.5.
    rng = np.random.default_rng(5)
    w = np.ones(16)
    estimates, ses = [], []
    for _ in range(60):
        noisy = add_counts_noise(clean_tacs[1], carfentanil_timing, "C11", 2.0, rng)
        fit = fit_srtm(carfentanil_timing, reference_tac, noisy, w, n_random_starts=0)
        estimates.append(fit.bpnd)
        ses.append(fit.bpnd_se)
    ratio = np.std(estimates) / np.median(ses)
    assert 1 / 1.5 < ratio < 1.5, ratio


def test_fits_on_a_bound_are_flagged(carfentanil_timing, reference_tac):
    # A target with BPND 10 cannot be fitted within BPND <= 8: the fit must say so.
    targets = TissueParameters.from_srtm(K1_REF, K2_REF, [1.0], [10.0], k4=0.5)
    tac = simulate_frames(carfentanil_timing, targets)[0]
    fit = fit_srtm(carfentanil_timing, reference_tac, tac, np.ones(16))
    assert fit.on_bound and "BPND on its bound" in fit.warnings[0]


def test_logan_needs_frames_after_tstar(carfentanil_timing, reference_tac, clean_tacs):
    with pytest.raises(ValueError, match="fewer than 3 frames"):
        fit_logan_ref(carfentanil_timing, reference_tac, clean_tacs[0], K2_REF, tstar_min=65)
