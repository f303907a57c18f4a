"""The exact frame-integrated convolution equals brute-force numerical integration."""

import numpy as np
import pytest

from workflows.kinetics.convolution import convolve_exponentials, running_integral
from workflows.kinetics.frames import FrameTiming


def brute_force(timing: FrameTiming, tac: np.ndarray, theta: float, step: float = 2e-4):
    """Convolution of the same piecewise-linear curve on a fine grid (minutes), then frame
    means by the trapezoid rule."""
    t = np.arange(0.0, timing.end_min[-1] + step / 2, step)
    knots_t = np.concatenate([[0.0], timing.mid_min])
    knots_v = np.concatenate([[0.0], tac])
    f = np.interp(t, knots_t, knots_v)
    slope = (knots_v[-1] - knots_v[-2]) / (knots_t[-1] - knots_t[-2])
    after = t > knots_t[-1]
    f[after] = np.maximum(knots_v[-1] + slope * (t[after] - knots_t[-1]), 0)
    # B(t) = exp(-theta t) int_0^t f(s) exp(theta s) ds, trapezoid on the fine grid
    g = f * np.exp(theta * t)
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * step)])
    b = np.exp(-theta * t) * integral
    means = []
    for a, e in zip(timing.start_min, timing.end_min):
        sel = (t >= a - 1e-9) & (t <= e + 1e-9)
        means.append(np.trapezoid(b[sel], t[sel]) / (t[sel][-1] - t[sel][0]))
    return np.array(means)


@pytest.mark.parametrize("theta", [0.01, 0.1, 0.6])
def test_matches_fine_grid_integration(theta):
    timing = FrameTiming.from_protocol([(4, 15), (3, 60), (4, 180), (3, 360)])
    rng = np.random.default_rng(3)
    tac = np.abs(np.sin(timing.mid_min / 5) * 1000 + rng.normal(0, 50, timing.n_frames))
    exact = convolve_exponentials(timing, tac, [theta])[0]
    np.testing.assert_allclose(exact, brute_force(timing, tac, theta), rtol=1e-5)


def test_gap_between_frames_is_handled():
    timing = FrameTiming(np.array([0.0, 60.0, 600.0]), np.array([60.0, 60.0, 300.0]))
    tac = np.array([500.0, 800.0, 400.0])
    np.testing.assert_allclose(convolve_exponentials(timing, tac, [0.2])[0],
                               brute_force(timing, tac, 0.2), rtol=1e-5)


def test_constant_input_reaches_its_steady_state():
    # For C_R = c constant from t=0, B(t) = c (1 - exp(-theta t)) / theta -> c / theta.
    timing = FrameTiming.from_minutes(np.arange(0, 600, 10) + 1e-3, np.full(60, 10.0))
    tac = np.full(60, 7.0)
    out = convolve_exponentials(timing, tac, [0.5])[0]
    assert out[-1] == pytest.approx(7.0 / 0.5, rel=1e-6)


def test_running_integral_is_the_area_under_the_curve():
    timing = FrameTiming.from_minutes([0, 2], [2, 2])           # mid-times 1 and 3 min
    area = running_integral(timing, np.array([[2.0, 4.0]]))[0]
    np.testing.assert_allclose(area, [1.0, 1.0 + 6.0])          # triangle, then trapezoid
