"""SRTM (Lammertsma & Hume 1996) by bounded weighted nonlinear least squares, for regional TACs.

    C_T(t) = R1 C_R(t) + (k2 - R1 k2a) C_R(t) (*) exp(-k2a t),   k2a = k2 / (1 + BPND)

Each TAC is fitted over (R1, k2, BPND) from the starts of lowest cost among a grid, the
basis-function solution and seeded random starts; the lowest cost wins. Standard errors come
from the Jacobian.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..convolution import ReferenceConvolver, convolve_exponentials
from ..fitting import NAN, best_of_starts, bound_warnings, covariance, standard_error
from ..frames import FrameTiming
from ..model import Fit, ModelSettings
from ._k2prime import fit_each
from .srtm_bfm import fit_srtm_bfm, make_basis_set

BOUNDS = {"R1": (0, 3), "k2": (0, 1), "BPND": (0, 8)}   # k2 in 1/min; Magia's bounds
# least squares runs from the starts of lowest cost only (a start's cost is one evaluation)
N_POLISHED = 4


def srtm_model(timing: FrameTiming, reference_tac: ArrayLike, r1: float, k2_per_min: float,
               bpnd: float) -> NDArray[np.float64]:
    """Frame means of the SRTM target curve for given parameters."""
    ref = np.asarray(reference_tac, dtype=np.float64)
    k2a = k2_per_min / (1.0 + bpnd)
    conv = convolve_exponentials(timing, ref, [k2a])[0]
    return r1 * ref + (k2_per_min - r1 * k2a) * conv


def fit_one(timing: FrameTiming, ref: NDArray[np.float64], y: NDArray[np.float64],
            weights: ArrayLike, n_random_starts: int = 10, seed: int = 0) -> dict:
    """One TAC: estimates, standard errors and bound warnings (a row of :meth:`Fit.from_rows`)."""
    sw = np.sqrt(np.asarray(weights, dtype=np.float64))
    convolve = ReferenceConvolver(timing, ref)
    lower = np.array([BOUNDS["R1"][0], max(BOUNDS["k2"][0], 1e-5), BOUNDS["BPND"][0]], float)
    upper = np.array([BOUNDS["R1"][1], BOUNDS["k2"][1], BOUNDS["BPND"][1]], float)

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        r1, k2, bp = x
        k2a = k2 / (1.0 + bp)
        model = r1 * ref + (k2 - r1 * k2a) * convolve([k2a])[0]
        return sw * (y - model)

    starts = [np.array([r1, k2, bp]) for r1 in (0.7, 1.2) for k2 in (0.05, 0.2, 0.6)
              for bp in (0.3, 1.5, 4.0)]
    bfm = fit_srtm_bfm(y, make_basis_set(timing, ref, sw**2, (0.005, 1.0), 100))
    starts.append(np.array([float(bfm["R1"][0]), float(bfm["k2"][0]), float(bfm["BPND"][0])]))
    rng = np.random.default_rng(seed)
    starts += [lower + rng.random(3) * (upper - lower) for _ in range(n_random_starts)]
    res = best_of_starts(residuals, starts, lower, upper, n_polished=N_POLISHED)
    r1, k2, bp = res.x
    wrss = float(2.0 * res.cost)
    cov = covariance(res.jac, wrss)
    warnings = bound_warnings(["R1", "k2", "BPND"], res.x, lower, upper)
    return {"BPND": float(bp), "R1": float(r1), "k2": float(k2), "k2a": float(k2 / (1 + bp)),
            "k2prime": float(k2 / r1) if r1 > 0 else NAN, "BPND_se": standard_error(cov, 2),
            "R1_se": standard_error(cov, 0), "k2_se": standard_error(cov, 1), "wrss": wrss,
            "n_frames": y.size, "on_bound": bool(warnings), "warnings": warnings}


def median_k2prime(k2prime: ArrayLike, on_bound: ArrayLike) -> tuple[float, int]:
    """k2' (1/min): the median of the SRTM fits' k2 / R1 (``k2prime``) over the fits that are
    not on a bound and give a positive value, and how many fits that median is of."""
    values = np.asarray(k2prime, dtype=np.float64)[~np.asarray(on_bound, dtype=bool)]
    values = values[np.isfinite(values) & (values > 0)]
    if not values.size:
        raise ValueError("cannot estimate k2': every SRTM fit is on a bound or failed; "
                         "give k2' explicitly")
    return float(np.median(values)), int(values.size)


def estimate_k2prime(fit: Fit) -> float:
    """k2' = k2 / R1 of the reference region (1/min), the median over the SRTM fits that are
    not on a bound. Regions with higher binding give the most stable estimates; pass those."""
    return median_k2prime(fit["k2prime"], fit.on_bound)[0]


class SRTM:
    name = "srtm"
    label = "SRTM"
    method = "SRTM"
    title = "SRTM by bounded nonlinear least squares"
    parameters = ("BPND", "R1", "k2", "k2a", "k2prime")
    maps = ()
    needs = ()
    voxelwise = False

    def fit_regional(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                     weights: ArrayLike, settings: ModelSettings,
                     n_random_starts: int = 10, seed: int = 0) -> Fit:
        ref = np.asarray(reference_tac, dtype=np.float64)
        return fit_each(self.method, tacs,
                        lambda y: fit_one(timing, ref, y, weights, n_random_starts, seed))

    def fitted(self, timing: FrameTiming, reference_tac: ArrayLike,
               values: dict[str, float]) -> NDArray[np.float64]:
        return srtm_model(timing, reference_tac, values["R1"], values["k2"], values["BPND"])

    def describe(self, settings: ModelSettings) -> dict:
        return {"Bounds": {name: list(bounds) for name, bounds in BOUNDS.items()}}

    def methods(self, settings: ModelSettings) -> str:
        bounds = ", ".join(f"{name} {lo:g}-{hi:g}{' /min' if name == 'k2' else ''}"
                           for name, (lo, hi) in BOUNDS.items())
        return (f"SRTM [@srtm] by bounded nonlinear least squares ({bounds}, as Magia "
                f"[@magia]; refined from the {N_POLISHED} best of many starts)")


MODEL = SRTM()
