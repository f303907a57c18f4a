"""Ground truth from physics: compartment models driven by a plasma input, integrated
numerically, frame-averaged, with optional count-dependent noise.

This module is deliberately independent of the fitting code (no shared convolution): it solves the
compartment ODEs with an adaptive integrator and frame-averages by integrating the tissue curve as
an extra state. Times in minutes, rate constants in 1/min, K1 in mL/min/mL, concentrations in
Bq/mL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import solve_ivp

from .frames import FrameTiming, decay_factors


@dataclass(frozen=True)
class FengInput:
    """Plasma input of Feng et al. (1993), model 2, delayed by ``delay_min``:

    Cp(t) = (A1 t - A2 - A3) exp(-l1 t) + A2 exp(-l2 t) + A3 exp(-l3 t)  (t after the delay).

    Defaults are the published FDG fit rescaled to a peak of about 40 kBq/mL, a shape typical of
    a bolus injection of a C-11 receptor ligand.
    """

    a1: float = 851.1225 * 50.0
    a2: float = 21.8798 * 50.0
    a3: float = 20.8113 * 50.0
    l1: float = 4.133859
    l2: float = 0.01043449
    l3: float = 0.1190996
    delay_min: float = 0.3

    def __call__(self, t_min: ArrayLike) -> NDArray[np.float64]:
        t = np.asarray(t_min, dtype=np.float64) - self.delay_min
        tp = np.maximum(t, 0.0)
        cp = ((self.a1 * tp - self.a2 - self.a3) * np.exp(-self.l1 * tp)
              + self.a2 * np.exp(-self.l2 * tp) + self.a3 * np.exp(-self.l3 * tp))
        return np.where(t > 0, cp, 0.0)


@dataclass(frozen=True)
class TissueParameters:
    """Two-tissue compartment rate constants per region (1-D arrays; k3 = k4 = 0 gives a
    one-tissue region). BPND = k3 / k4 where k4 > 0."""

    k1: NDArray[np.float64]
    k2: NDArray[np.float64]
    k3: NDArray[np.float64]
    k4: NDArray[np.float64]

    @classmethod
    def from_srtm(cls, k1_ref: float, k2_ref: float, r1: ArrayLike, bpnd: ArrayLike,
                  k4: ArrayLike) -> "TissueParameters":
        """Targets with the reference region's nondisplaceable volume K1/k2: K1 = R1 K1_ref,
        k2 = R1 k2_ref, k3 = BPND k4."""
        r1 = np.atleast_1d(np.asarray(r1, dtype=np.float64))
        bpnd = np.broadcast_to(np.asarray(bpnd, dtype=np.float64), r1.shape)
        k4 = np.broadcast_to(np.asarray(k4, dtype=np.float64), r1.shape)
        return cls(r1 * k1_ref, r1 * k2_ref, bpnd * k4, k4.copy())


def simulate_frames(timing: FrameTiming, params: TissueParameters,
                    plasma: FengInput | None = None) -> NDArray[np.float64]:
    """Frame means of the tissue curves C_T = C_free + C_bound, decay-corrected, shape
    (n_regions, n_frames). Solved with an adaptive Runge-Kutta integrator (rtol 1e-10)."""
    plasma = plasma or FengInput()
    k1, k2, k3, k4 = (np.atleast_1d(np.asarray(p, dtype=np.float64)) for p in
                      (params.k1, params.k2, params.k3, params.k4))
    n = k1.size

    def rhs(t: float, y: NDArray[np.float64]) -> NDArray[np.float64]:
        free, bound = y[:n], y[n:2 * n]
        cp = float(plasma(t))
        d_free = k1 * cp - (k2 + k3) * free + k4 * bound
        d_bound = k3 * free - k4 * bound
        return np.concatenate([d_free, d_bound, free + bound])

    edges = np.unique(np.concatenate([[0.0], timing.start_min, timing.end_min]))
    solution = solve_ivp(rhs, (0.0, float(edges[-1])), np.zeros(3 * n), method="DOP853",
                         t_eval=edges, rtol=1e-10, atol=1e-9, max_step=0.05)
    if not solution.success:
        raise RuntimeError(f"ODE integration failed: {solution.message}")
    area = solution.y[2 * n:]                             # (n, n_edges) running integral
    a = np.searchsorted(edges, timing.start_min)
    b = np.searchsorted(edges, timing.end_min)
    return (area[:, b] - area[:, a]) / timing.duration_min


def add_counts_noise(tacs: ArrayLike, timing: FrameTiming, radionuclide: str, scale: float,
                     rng: np.random.Generator) -> NDArray[np.float64]:
    """Gaussian noise whose variance follows the counts (Logan et al. 2001): for a decay-corrected
    frame mean C_j of duration d_j (minutes) and decay-correction factor DCF_j,
    SD_j = scale x sqrt(C_j x DCF_j / d_j). ``scale`` sets the noise level (0.3 to 1 is typical
    of regional TACs, larger for voxels)."""
    tacs = np.asarray(tacs, dtype=np.float64)
    dcf = decay_factors(timing, radionuclide)
    sd = scale * np.sqrt(np.maximum(tacs, 0.0) * dcf / timing.duration_min)
    return tacs + sd * rng.standard_normal(tacs.shape)
