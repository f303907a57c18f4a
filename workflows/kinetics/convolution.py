"""Exact frame-integrated convolution of a reference TAC with decaying exponentials.

The reference tissue curve C_R(t) is known only as frame means. It is represented by the
piecewise-linear curve through (0, 0) and (mid-frame time, frame mean), extended linearly after the
last mid-time (and never below zero). For that curve the convolution

    B(t) = integral_0^t C_R(s) exp(-theta (t - s)) ds

is computed exactly at every frame boundary (a closed form on each linear piece), and its frame
mean follows exactly from B' = C_R - theta B:

    integral_a^b B dt = (integral_a^b C_R dt - (B(b) - B(a))) / theta.

There is no sampling grid, so the result does not depend on a step size. Times are in minutes and
theta in 1/min.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .frames import FrameTiming


def _interpolant_grid(timing: FrameTiming, tac: NDArray[np.float64]
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Knots of the piecewise-linear reference curve on the union of 0, frame edges and mid-times
    (minutes), and its values there."""
    mid = timing.mid_min
    grid = np.unique(np.concatenate([[0.0], timing.start_min, timing.end_min, mid]))
    knots_t = np.concatenate([[0.0], mid])
    knots_v = np.concatenate([[0.0], tac])
    values = np.interp(grid, knots_t, knots_v)
    slope = (knots_v[-1] - knots_v[-2]) / (knots_t[-1] - knots_t[-2])
    if slope < 0 and knots_v[-1] > 0:
        # the extension reaches zero before the end: add that point as a knot (exact kink)
        t_zero = mid[-1] - knots_v[-1] / slope
        if t_zero < grid[-1]:
            grid = np.union1d(grid, [t_zero])
            values = np.interp(grid, knots_t, knots_v)
    after = grid > mid[-1]
    values[after] = np.maximum(knots_v[-1] + slope * (grid[after] - mid[-1]), 0.0)
    return grid, values


def convolve_exponentials(timing: FrameTiming, tac: ArrayLike,
                          theta_per_min: ArrayLike) -> NDArray[np.float64]:
    """Frame means of C_R (*) exp(-theta t) for each theta.

    Parameters
    ----------
    timing : frame timing.
    tac : (n_frames,) frame means of the reference TAC (any unit, e.g. Bq/mL).
    theta_per_min : (n_theta,) positive rate constants in 1/min.

    Returns
    -------
    (n_theta, n_frames) array, in the TAC's unit x minutes.
    """
    return ReferenceConvolver(timing, tac)(theta_per_min)


class ReferenceConvolver:
    """:func:`convolve_exponentials` of one reference TAC, its interpolant prepared once (an
    iterative fit convolves the same TAC hundreds of times)."""

    def __init__(self, timing: FrameTiming, tac: ArrayLike) -> None:
        self.grid, self.f = _interpolant_grid(timing, np.asarray(tac, dtype=np.float64))
        self.h = np.diff(self.grid)                                  # (n_seg,)
        self.slope = np.diff(self.f) / self.h
        integral_f = np.concatenate([[0.0], np.cumsum(0.5 * (self.f[1:] + self.f[:-1])
                                                      * self.h)])
        self.start = np.searchsorted(self.grid, timing.start_min)
        self.end = np.searchsorted(self.grid, timing.end_min)
        self.frame_integral_f = integral_f[self.end] - integral_f[self.start]
        self.duration_min = timing.duration_min

    def __call__(self, theta_per_min: ArrayLike) -> NDArray[np.float64]:
        theta = np.atleast_1d(np.asarray(theta_per_min, dtype=np.float64))
        if np.any(theta <= 0):
            raise ValueError("theta must be positive (1/min)")
        th, h = theta[:, None], self.h                 # (n_theta, 1), (n_seg,)
        decay = np.exp(-th * h)                        # (n_theta, n_seg)
        one_minus = -np.expm1(-th * h)
        gain_level = one_minus / th                    # integral of exp(-theta (h - u)) du
        gain_slope = (th * h - one_minus) / th**2      # integral of u exp(-theta (h - u)) du
        increments = self.f[:-1] * gain_level + self.slope * gain_slope
        b = _recurrence(th, self.grid, decay, increments)
        delta_b = b[:, self.end] - b[:, self.start]
        return (self.frame_integral_f - delta_b) / (th * self.duration_min)


# largest theta * t (1/min x min) for which exp(theta t) is summed directly (exp(600) ~ 1e260)
_MAX_EXPONENT = 600.0


def _recurrence(th: NDArray[np.float64], grid: NDArray[np.float64], decay: NDArray[np.float64],
                increments: NDArray[np.float64]) -> NDArray[np.float64]:
    """B at every knot from B(0) = 0 and B_{k+1} = B_k exp(-theta h_k) + increment_k: in closed
    form, B_k = exp(-theta t_k) sum_{j<k} increment_j exp(theta t_{j+1}), where exp(theta t)
    stays in range; else knot by knot."""
    b = np.zeros((th.shape[0], grid.size))
    if th.max() * grid[-1] <= _MAX_EXPONENT:
        growth = np.exp(th * grid[1:])
        b[:, 1:] = np.cumsum(increments * growth, axis=1) / growth
        return b
    for k in range(grid.size - 1):
        b[:, k + 1] = b[:, k] * decay[:, k] + increments[:, k]
    return b


def running_integral(timing: FrameTiming, tacs: ArrayLike) -> NDArray[np.float64]:
    """Integral from 0 to each mid-frame time of the piecewise-linear curve through (0, 0) and
    the frame means (last axis = frames); unit of the TAC x minutes."""
    # linear in the TAC: one matrix product, the trapezoids' running sums applied to each
    # unit TAC (rows of the identity), far faster for many TACs than a cumsum along frames
    t = np.concatenate([[0.0], timing.mid_min])
    v = np.vstack([np.zeros(timing.n_frames), np.eye(timing.n_frames)]).T   # (F, F + 1)
    matrix = np.cumsum(0.5 * (v[:, 1:] + v[:, :-1]) * np.diff(t), axis=-1)
    return np.asarray(tacs, dtype=np.float64) @ matrix
