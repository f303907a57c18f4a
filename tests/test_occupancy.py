"""Occupancy from baseline and blocked BPND: the per-region ratio, the occupancy plot across
regions, and the exposure-occupancy curve, against known truth and statsmodels."""

import numpy as np
import pytest
import statsmodels.api as sm

from workflows.group.occupancy import (fit_exposure_occupancy, occupancy_plot,
                                       regional_occupancy)


def regions(rng, n=40):
    """Baseline BPND of n regions, 0.2 to 4 (log-uniform), as across a brain atlas."""
    return np.exp(rng.uniform(np.log(0.2), np.log(4.0), n))


@pytest.mark.parametrize("occupancy", [0.5, 0.9])
def test_occupancy_plot_recovers_the_occupancy_of_every_region(occupancy):
    # The drug takes the same fraction of receptors everywhere: blocked = (1 - occ) baseline.
    # Regional BPND with noise of SD 0.02 + 3 % (both scans, 40 regions), 200 participants: the
    # slope through the origin is unbiased (mean within 0.005) and within 0.02 of the truth in
    # 95 % of participants or more.
    rng = np.random.default_rng(1)
    errors = []
    for _ in range(200):
        base_true = regions(rng)
        noisy = [t + rng.normal(0, 0.02 + 0.03 * t) for t in (base_true,
                                                              (1 - occupancy) * base_true)]
        fit = occupancy_plot(*noisy)
        errors.append(fit.occupancy - occupancy)
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.005
    assert np.mean(np.abs(errors) < 0.02) >= 0.95
    assert fit.n_regions == 40


def test_occupancy_plot_equals_statsmodels_ols():
    # Independent implementation: statsmodels OLS of (baseline - blocked) on baseline, without
    # and with a constant: the same estimates, confidence limits and intercept p.
    rng = np.random.default_rng(2)
    base = regions(rng, 25)
    blocked = 0.4 * base + rng.normal(0, 0.05, base.size) + 0.03
    fit = occupancy_plot(base, blocked)
    y = base - blocked
    origin = sm.OLS(y, base).fit()
    full = sm.OLS(y, sm.add_constant(base)).fit()
    np.testing.assert_allclose([fit.occupancy, fit.occupancy_low, fit.occupancy_high],
                               [origin.params[0], *origin.conf_int(0.05)[0]], rtol=1e-10)
    np.testing.assert_allclose([fit.intercept, fit.slope, fit.intercept_low, fit.intercept_high,
                                fit.intercept_p],
                               [full.params[0], full.params[1], *full.conf_int(0.05)[0],
                                full.pvalues[0]], rtol=1e-8)


def test_occupancy_interval_covers_the_truth_95_percent_of_the_time():
    # Homoscedastic regional noise (SD 0.05), 500 participants: the 95 % interval of the
    # slope through the origin covers the true occupancy 0.7 in 95 % of them (binomial SD
    # 1 %: 92-98 % allowed).
    rng = np.random.default_rng(3)
    base = regions(rng, 20)
    hits = 0
    for _ in range(500):
        fit = occupancy_plot(base + rng.normal(0, 0.05, 20),
                             0.3 * base + rng.normal(0, 0.05, 20))
        hits += fit.occupancy_low < 0.7 < fit.occupancy_high
    assert 0.92 <= hits / 500 <= 0.98


def test_intercept_flags_reference_binding_the_drug_does_not_displace():
    # BPND is measured against the reference: BPND' = (1 + BP) / (1 + BP_ref) - 1. If the
    # reference holds binding (BP_ref 0.3) to sites the drug does not occupy, baseline -
    # blocked = occ x + occ BP_ref / (1 + BP_ref): an intercept of 0.14 at occupancy 0.6, found
    # (p < 0.001, interval holding it) while the slope stays the occupancy. A reference free of
    # binding gives an intercept compatible with 0.
    rng = np.random.default_rng(4)
    bp = regions(rng)
    occ = 0.6

    def measured(bp_ref):
        base = (1 + bp) / (1 + bp_ref) - 1
        block = (1 + (1 - occ) * bp) / (1 + bp_ref) - 1
        return base + rng.normal(0, 0.01, bp.size), block + rng.normal(0, 0.01, bp.size)

    bound = occupancy_plot(*measured(0.3))
    expected = occ * 0.3 / 1.3
    assert bound.intercept_p < 1e-3
    assert bound.intercept_low < expected < bound.intercept_high
    assert abs(bound.slope - occ) < 0.01
    free = occupancy_plot(*measured(0.0))
    assert free.intercept_low < 0 < free.intercept_high
    assert abs(free.occupancy - occ) < 0.01


def test_regional_standard_error_matches_the_scatter_of_the_ratio():
    # Delta method: SE of 1 - blocked/baseline from the two BPNDs' SEs; against the SD of the
    # ratio over 20,000 normal draws (within 5 %). A baseline BPND of 0 gives NaN, not inf.
    rng = np.random.default_rng(5)
    base, block, se_base, se_block = 2.0, 0.6, 0.08, 0.05
    draws = 1 - (block + rng.normal(0, se_block, 20000)) / (base + rng.normal(0, se_base, 20000))
    occ, se = regional_occupancy([base, 0.0], [block, 0.1], [se_base, 0.1], [se_block, 0.1])
    assert occ[0] == pytest.approx(0.7)
    assert se[0] == pytest.approx(draws.std(), rel=0.05)
    assert np.isnan(occ[1]) and np.isnan(se[1])
    assert np.isnan(regional_occupancy([1.0], [0.5])[1]).all()    # no SEs given


def test_ec50_from_twelve_participants_within_15_percent():
    # 12 participants, exposures log-spaced from EC50/4 to 4 EC50 (EC50 = 3 mg), occupancy
    # measured with SD 0.02: EC50 within 15 % and inside its interval; with Omax free (truth
    # 0.85), Omax within 0.05.
    rng = np.random.default_rng(6)
    dose = np.geomspace(0.75, 12.0, 12)
    for omax, fit_omax in ((1.0, False), (0.85, True)):
        occ = omax * dose / (dose + 3.0) + rng.normal(0, 0.02, dose.size)
        fit = fit_exposure_occupancy(dose, occ, fit_omax=fit_omax)
        assert abs(fit.ec50 / 3.0 - 1) < 0.15, fit
        assert fit.ec50_low < 3.0 < fit.ec50_high
        assert abs(fit.omax - omax) < 0.05
        assert np.isnan(fit.omax_se) != fit_omax
    np.testing.assert_allclose(fit.predict([fit.ec50]), fit.omax / 2)


def test_ec50_interval_covers_the_truth_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    dose = np.geomspace(0.75, 12.0, 12)
    truth = dose / (dose + 3.0)
    hits = sum(f.ec50_low < 3.0 < f.ec50_high for f in (
        fit_exposure_occupancy(dose, truth + rng.normal(0, 0.03, 12)) for _ in range(400)))
    assert 0.91 <= hits / 400 <= 0.98


def test_too_few_points_is_an_error_not_a_number():
    with pytest.raises(ValueError, match="3 regions"):
        occupancy_plot([1.0, 2.0], [0.5, 1.0])
    with pytest.raises(ValueError, match="participants"):
        fit_exposure_occupancy([1.0, 2.0], [0.3, 0.5])
