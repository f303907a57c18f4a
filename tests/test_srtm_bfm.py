"""SRTM by basis functions recovers BPND simulated from physics, and its vectorised solution is
the per-voxel weighted least-squares solution."""

import numpy as np
import pytest

from bids_app.tracers import lookup_tracer
from conftest import K1_REF, K2_REF, reference_parameters
from workflows.kinetics.compartments import (TissueParameters, add_counts_noise,
                                             simulate_frames)
from workflows.kinetics.models.srtm import srtm_model
from workflows.kinetics.models.srtm_bfm import fit_srtm_bfm, make_basis_set
from workflows.kinetics.weights import frame_weights

BPND = np.array([0.2, 0.5, 1.0, 2.0, 3.0, 4.0])


def test_noise_free_two_tissue_targets_within_one_percent(seed_protocol):
    # Two-tissue targets with fast exchange between free and bound (k4 = 0.5 /min), the regime
    # where SRTM's one-tissue assumption holds: BPND = k3/k4 within 1 % for 0.2 to 4.
    _, timing = seed_protocol
    ref = simulate_frames(timing, reference_parameters())[0]
    targets = TissueParameters.from_srtm(K1_REF, K2_REF, np.full(6, 1.1), BPND, k4=0.5)
    tacs = simulate_frames(timing, targets)
    result = fit_srtm_bfm(tacs, make_basis_set(timing, ref, np.ones(timing.n_frames),
                                               (0.01, 1.0), 300))
    np.testing.assert_allclose(result["BPND"], BPND, rtol=0.01)
    assert not result.on_bound.any()


def test_one_tissue_targets_recover_r1_and_k2(seed_protocol):
    # A one-tissue target with V_T = V_ND (1 + BPND) is exactly SRTM: every parameter is known.
    _, timing = seed_protocol
    ref = simulate_frames(timing, reference_parameters())[0]
    r1 = np.array([0.8, 1.0, 1.3, 0.9, 1.1, 1.2])
    targets = TissueParameters(r1 * K1_REF, r1 * K2_REF / (1 + BPND), 0 * r1, 0 * r1)
    result = fit_srtm_bfm(simulate_frames(timing, targets),
                          make_basis_set(timing, ref, np.ones(timing.n_frames), (0.01, 1.0)))
    np.testing.assert_allclose(result["BPND"], BPND, rtol=0.01)
    np.testing.assert_allclose(result["R1"], r1, rtol=0.01)
    # k2 = k2a (1 + BPND) inherits the spacing of the theta3 grid (1.6 % with 300 bases).
    np.testing.assert_allclose(result["k2"], r1 * K2_REF, rtol=0.03)


def test_slow_dissociation_biases_srtm_as_known():
    # Model mismatch: when k4 is slow the target is not one-tissue and SRTM is biased (the known
    # bias of a one-tissue model on a two-tissue target); the bias shrinks as k4 grows.
    from workflows.kinetics.frames import FrameTiming, SEED_PROTOCOLS
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS["carfentanil"])
    ref = simulate_frames(timing, reference_parameters())[0]
    errors = []
    for k4 in (0.05, 0.2, 0.5):
        tacs = simulate_frames(timing, TissueParameters.from_srtm(K1_REF, K2_REF, [1.0], [1.0],
                                                                  k4=k4))
        bp = fit_srtm_bfm(tacs, make_basis_set(timing, ref, np.ones(16), (0.005, 1.0)))["BPND"]
        errors.append(abs(bp[0] - 1.0))
    assert errors[0] > errors[1] > errors[2]


def test_bias_under_realistic_noise_is_small(carfentanil_timing, reference_tac):
    # Count-dependent noise (about 2-5 % per frame on a regional TAC), 400 realisations per
    # BPND: the mean estimate is within 3 % of the truth with Magia's counts weights.
    timing = carfentanil_timing
    tracer = lookup_tracer("carfentanil")
    targets = TissueParameters.from_srtm(K1_REF, K2_REF, np.full(4, 1.0),
                                         np.array([0.5, 1.0, 2.0, 3.0]), k4=0.5)
    clean = simulate_frames(timing, targets)
    rng = np.random.default_rng(42)
    n = 400
    noisy = add_counts_noise(np.repeat(clean, n, axis=0), timing, "C11", 2.0, rng)
    rel_noise = np.std(noisy[:n] - clean[0], axis=0) / clean[0]
    assert 0.01 < np.median(rel_noise) < 0.1
    weights = frame_weights("counts", timing, clean.mean(axis=0), "C11")
    basis_set = make_basis_set(timing, reference_tac, weights, tracer.k2a_range_per_min())
    bp = fit_srtm_bfm(noisy, basis_set)["BPND"].reshape(4, n)
    bias = bp.mean(axis=1) / np.array([0.5, 1.0, 2.0, 3.0]) - 1
    assert np.all(np.abs(bias) < 0.03), bias


def brute_force_fit(timing, ref, y, w, theta):
    """Per-voxel, per-basis weighted least squares with numpy.linalg.lstsq, for comparison."""
    from workflows.kinetics.convolution import convolve_exponentials
    basis = convolve_exponentials(timing, ref, theta)
    sw = np.sqrt(w)
    best = (np.inf, None)
    for i, b in enumerate(basis):
        a = np.column_stack([ref, b]) * sw[:, None]
        coef, *_ = np.linalg.lstsq(a, y * sw, rcond=None)
        rss = float(np.sum((y * sw - a @ coef) ** 2))
        if rss < best[0]:
            best = (rss, (coef, theta[i]))
    (theta1, theta2), t3 = best[1]
    return (theta2 + theta1 * t3) / t3 - 1, theta1, best[0]


def test_vectorised_solution_equals_per_voxel_least_squares(carfentanil_timing, reference_tac):
    timing = carfentanil_timing
    rng = np.random.default_rng(7)
    r1 = rng.uniform(0.7, 1.4, 30)
    bp = rng.uniform(0.1, 3.0, 30)
    tacs = np.array([srtm_model(timing, reference_tac, a, K2_REF * a, b) for a, b in zip(r1, bp)])
    tacs = add_counts_noise(tacs, timing, "C11", 3.0, rng)
    w = frame_weights("counts", timing, tacs.mean(axis=0), "C11")
    basis_set = make_basis_set(timing, reference_tac, w, (0.02, 0.8), 60)
    fast = fit_srtm_bfm(tacs, basis_set, chunk_voxels=7)
    for i, y in enumerate(tacs):
        bp_ref, r1_ref, rss_ref = brute_force_fit(timing, reference_tac, y, w,
                                                  basis_set.theta3_per_min)
        assert fast["BPND"][i] == pytest.approx(bp_ref, rel=1e-9, abs=1e-9)
        assert fast["R1"][i] == pytest.approx(r1_ref, rel=1e-9)
        assert fast.wrss[i] == pytest.approx(rss_ref, rel=1e-7, abs=1e-9)


def test_chunking_and_threads_do_not_change_results(carfentanil_timing, reference_tac):
    rng = np.random.default_rng(1)
    tacs = reference_tac * rng.uniform(0.5, 3.0, (101, 1)) + rng.normal(0, 20, (101, 16))
    basis_set = make_basis_set(carfentanil_timing, reference_tac, np.ones(16), (0.02, 0.8))
    a = fit_srtm_bfm(tacs, basis_set, chunk_voxels=13, n_threads=2)
    b = fit_srtm_bfm(tacs, basis_set, chunk_voxels=10_000, n_threads=1)
    # The same basis is chosen for every voxel; values agree to rounding (BLAS blocking).
    np.testing.assert_array_equal(a["k2a"], b["k2a"])
    np.testing.assert_allclose(a["BPND"], b["BPND"], rtol=1e-12, atol=1e-14)


def test_truth_outside_the_range_is_flagged(carfentanil_timing, reference_tac):
    # k2a = k2 / (1 + BPND) = 0.15 / 6 = 0.025 lies below a range starting at 0.06.
    tac = srtm_model(carfentanil_timing, reference_tac, 1.0, 0.15, 5.0)
    result = fit_srtm_bfm(tac, make_basis_set(carfentanil_timing, reference_tac, np.ones(16),
                                              (0.06, 0.6)))
    assert bool(result.on_bound)


@pytest.mark.parametrize("ref_scale,weights,frames,message", [
    (0.0, np.ones(16), 16, "zero everywhere"),
    (1.0, np.ones(15), 16, "need 16 frames"),
    (1.0, -np.ones(16), 16, "non-negative"),
])
def test_bad_inputs_are_refused(carfentanil_timing, reference_tac, ref_scale, weights, frames,
                                message):
    with pytest.raises(ValueError, match=message):
        make_basis_set(carfentanil_timing, reference_tac * ref_scale, weights)


def test_frame_count_mismatch_between_tacs_and_basis(carfentanil_timing, reference_tac):
    basis_set = make_basis_set(carfentanil_timing, reference_tac, np.ones(16))
    with pytest.raises(ValueError, match="TACs have 15 frames"):
        fit_srtm_bfm(np.ones((3, 15)), basis_set)


def test_float32_basis_search_chooses_the_float64_best_basis(carfentanil_timing, reference_tac):
    # The basis search projects in float32 and checks the choice's neighbours in float64. On
    # 60,000 noisy voxels (noise from low to very high, activity scaled up to 1e5 so float32
    # rounding is large in absolute terms), 300 bases: the chosen basis is float64's argmax in
    # every voxel, and the projection returned is float64's.
    from workflows.kinetics.models.srtm_bfm import best_basis
    timing = carfentanil_timing
    rng = np.random.default_rng(11)
    r1 = rng.uniform(0.7, 1.4, 200)
    bp = rng.uniform(0.05, 3.0, 200)
    clean = np.array([srtm_model(timing, reference_tac, a, K2_REF * a, b) for a, b in zip(r1, bp)])
    tacs = np.concatenate([add_counts_noise(clean[rng.integers(0, 200, 20_000)], timing, "C11",
                                            level, rng) for level in (0.5, 3.0, 12.0)])
    tacs *= rng.choice([1.0, 30.0, 3000.0], (len(tacs), 1))
    w = frame_weights("counts", timing, clean.mean(axis=0), "C11")
    basis_set = make_basis_set(timing, reference_tac, w, (0.02, 0.8), 300)
    yw = tacs * basis_set.sqrt_w
    exact = yw @ basis_set.q2.T
    expected = np.argmax(exact ** 2, axis=1)
    chosen, projection = best_basis(yw, np.ascontiguousarray(basis_set.q2.T, np.float32),
                                    basis_set.q2)
    np.testing.assert_array_equal(chosen, expected)
    np.testing.assert_allclose(projection, exact[np.arange(len(yw)), expected], rtol=1e-12)
