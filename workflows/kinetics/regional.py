"""Reference-tissue models for regional TACs: SRTM (nonlinear), SRTM2, MRTM2 and the Logan
reference plot.

All take decay-corrected frame means (any common unit), frame timing, and weights (see
:mod:`.weights`); rate constants are in 1/min. Each returns a :class:`RegionalFit` per region, with
standard errors where the model gives them (from the Jacobian for nonlinear fits, from the
regression covariance for the linear ones; BPND's by the delta method).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict
from typing import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from .convolution import convolve_exponentials, running_integral
from .frames import FrameTiming
from .srtm_bfm import make_basis_set, fit_srtm_bfm

NAN = float("nan")
SRTM_BOUNDS = {"r1": (0.0, 3.0), "k2": (0.0, 1.0), "bpnd": (0.0, 8.0)}


@dataclass
class RegionalFit:
    """Estimates for one region; NaN where a model does not define a value."""

    model: str
    bpnd: float
    r1: float = NAN
    k2_per_min: float = NAN
    k2a_per_min: float = NAN
    k2prime_per_min: float = NAN
    bpnd_se: float = NAN
    r1_se: float = NAN
    k2_se: float = NAN
    wrss: float = NAN
    n_frames_fitted: int = 0
    on_bound: bool = False
    warnings: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, object]:
        row = asdict(self)
        row["warnings"] = "; ".join(self.warnings)
        return row


def _covariance(jac: NDArray[np.float64], wrss: float) -> NDArray[np.float64]:
    dof = jac.shape[0] - jac.shape[1]
    if dof <= 0:
        return np.full((jac.shape[1],) * 2, NAN)
    try:
        return np.linalg.inv(jac.T @ jac) * (wrss / dof)
    except np.linalg.LinAlgError:
        return np.full((jac.shape[1],) * 2, NAN)


def _se(cov: NDArray[np.float64], i: int) -> float:
    v = cov[i, i]
    return math.sqrt(v) if np.isfinite(v) and v >= 0 else NAN


def _best_of_starts(residuals: Callable[[NDArray[np.float64]], NDArray[np.float64]],
                    starts: list[NDArray[np.float64]], lower: NDArray[np.float64],
                    upper: NDArray[np.float64]):
    best = None
    for x0 in starts:
        x0 = np.clip(x0, lower + 1e-9, upper - 1e-9)
        res = least_squares(residuals, x0, bounds=(lower, upper), method="trf",
                            x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
        if best is None or res.cost < best.cost:
            best = res
    return best


def _bound_warnings(names: list[str], x: NDArray[np.float64], lower: NDArray[np.float64],
                    upper: NDArray[np.float64]) -> list[str]:
    out = []
    for name, v, lo, hi in zip(names, x, lower, upper):
        span = hi - lo
        if v <= lo + 1e-6 * span or v >= hi - 1e-6 * span:
            out.append(f"{name} on its bound ({v:.4g} in [{lo:g}, {hi:g}])")
    return out


def fit_srtm(timing: FrameTiming, reference_tac: ArrayLike, tac: ArrayLike, weights: ArrayLike,
             bounds: dict[str, tuple[float, float]] | None = None,
             n_random_starts: int = 10, seed: int = 0) -> RegionalFit:
    """SRTM (Lammertsma & Hume 1996) by bounded weighted nonlinear least squares over
    (R1, k2, BPND), from a grid of starts, the basis-function solution and ``n_random_starts``
    seeded random starts; the lowest cost wins."""
    ref = np.asarray(reference_tac, dtype=np.float64)
    y = np.asarray(tac, dtype=np.float64)
    sw = np.sqrt(np.asarray(weights, dtype=np.float64))
    b = {**SRTM_BOUNDS, **(bounds or {})}
    lower = np.array([b["r1"][0], max(b["k2"][0], 1e-5), b["bpnd"][0]])
    upper = np.array([b["r1"][1], b["k2"][1], b["bpnd"][1]])

    def model(x: NDArray[np.float64]) -> NDArray[np.float64]:
        r1, k2, bp = x
        k2a = k2 / (1.0 + bp)
        return r1 * ref + (k2 - r1 * k2a) * convolve_exponentials(timing, ref, [k2a])[0]

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return sw * (y - model(x))

    starts = [np.array([r1, k2, bp]) for r1 in (0.7, 1.2) for k2 in (0.05, 0.2, 0.6)
              for bp in (0.3, 1.5, 4.0)]
    bfm = fit_srtm_bfm(y, make_basis_set(timing, ref, sw**2, (0.005, 1.0), 100))
    starts.append(np.array([float(bfm.r1), float(bfm.k2_per_min), float(bfm.bpnd)]))
    rng = np.random.default_rng(seed)
    starts += [lower + rng.random(3) * (upper - lower) for _ in range(n_random_starts)]
    res = _best_of_starts(residuals, starts, lower, upper)
    r1, k2, bp = res.x
    wrss = float(2.0 * res.cost)
    cov = _covariance(res.jac, wrss)
    warnings = _bound_warnings(["R1", "k2", "BPND"], res.x, lower, upper)
    return RegionalFit("SRTM", float(bp), float(r1), float(k2), float(k2 / (1 + bp)),
                       float(k2 / r1) if r1 > 0 else NAN, _se(cov, 2), _se(cov, 0), _se(cov, 1),
                       wrss, y.size, bool(warnings), warnings)


def fit_srtm2(timing: FrameTiming, reference_tac: ArrayLike, tac: ArrayLike, weights: ArrayLike,
              k2prime_per_min: float, bounds: dict[str, tuple[float, float]] | None = None
              ) -> RegionalFit:
    """SRTM2 (Wu & Carson 2002) with the reference efflux k2' fixed:
    C_T = R1 C_R + R1 (k2' - k2a) C_R (*) exp(-k2a t); BPND = R1 k2' / k2a - 1."""
    if not (k2prime_per_min > 0 and math.isfinite(k2prime_per_min)):
        raise ValueError(f"SRTM2 needs a positive k2' (1/min), got {k2prime_per_min}")
    ref = np.asarray(reference_tac, dtype=np.float64)
    y = np.asarray(tac, dtype=np.float64)
    sw = np.sqrt(np.asarray(weights, dtype=np.float64))
    b = {**SRTM_BOUNDS, **(bounds or {})}
    lower = np.array([b["r1"][0], 1e-4])
    upper = np.array([b["r1"][1], b["k2"][1]])

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        r1, k2a = x
        conv = convolve_exponentials(timing, ref, [k2a])[0]
        return sw * (y - (r1 * ref + r1 * (k2prime_per_min - k2a) * conv))

    starts = [np.array([r1, k2a]) for r1 in (0.6, 1.0, 1.5) for k2a in (0.01, 0.05, 0.2, 0.5)]
    res = _best_of_starts(residuals, starts, lower, upper)
    r1, k2a = res.x
    wrss = float(2.0 * res.cost)
    cov = _covariance(res.jac, wrss)
    grad = np.array([k2prime_per_min / k2a, -r1 * k2prime_per_min / k2a**2])
    var_bp = float(grad @ cov @ grad)
    k2 = r1 * k2prime_per_min
    warnings = _bound_warnings(["R1", "k2a"], res.x, lower, upper)
    return RegionalFit("SRTM2", float(r1 * k2prime_per_min / k2a - 1.0), float(r1), float(k2),
                       float(k2a), k2prime_per_min, math.sqrt(var_bp) if var_bp >= 0 else NAN,
                       _se(cov, 0), _se(cov, 0) * k2prime_per_min, wrss, y.size, bool(warnings),
                       warnings)


def _weighted_linear_fit(x: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64]
                         ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    sw = np.sqrt(w)
    xw, yw = x * sw[:, None], y * sw
    coef, *_ = np.linalg.lstsq(xw, yw, rcond=None)
    resid = yw - xw @ coef
    wrss = float(resid @ resid)
    return coef, _covariance(xw, wrss), wrss


def fit_mrtm2(timing: FrameTiming, reference_tac: ArrayLike, tac: ArrayLike, weights: ArrayLike,
              k2prime_per_min: float, tstar_min: float = 0.0) -> RegionalFit:
    """MRTM2 (Ichise et al. 2003), linear in gamma1, gamma2 over frames with mid-time >= t*:
    C_T(T) = gamma1 (int_0^T C_R + C_R(T) / k2') + gamma2 int_0^T C_T;
    BPND = -(gamma1 / gamma2) - 1, k2 = gamma1, R1 = gamma1 / k2'."""
    ref = np.asarray(reference_tac, dtype=np.float64)
    y = np.asarray(tac, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    keep = timing.mid_min >= tstar_min
    if keep.sum() < 3:
        raise ValueError(f"MRTM2: fewer than 3 frames after t* = {tstar_min} min")
    x = np.column_stack([running_integral(timing, ref) + ref / k2prime_per_min,
                         running_integral(timing, y)])[keep]
    coef, cov, wrss = _weighted_linear_fit(x, y[keep], w[keep])
    g1, g2 = coef
    grad = np.array([-1.0 / g2, g1 / g2**2])
    var_bp = float(grad @ cov @ grad)
    return RegionalFit("MRTM2", float(-g1 / g2 - 1.0), float(g1 / k2prime_per_min), float(g1),
                       float(-g2), k2prime_per_min, math.sqrt(var_bp) if var_bp >= 0 else NAN,
                       _se(cov, 0) / k2prime_per_min, _se(cov, 0), wrss, int(keep.sum()))


def fit_logan_ref(timing: FrameTiming, reference_tac: ArrayLike, tac: ArrayLike,
                  k2prime_per_min: float, tstar_min: float = 15.0,
                  weights: ArrayLike | None = None) -> RegionalFit:
    """Logan reference plot (Logan et al. 1996): for frames with mid-time >= t*,
    int C_T / C_T = DVR (int C_R + C_R / k2') / C_T + b; BPND = DVR - 1."""
    ref = np.asarray(reference_tac, dtype=np.float64)
    y = np.asarray(tac, dtype=np.float64)
    keep = (timing.mid_min >= tstar_min) & (y > 0)
    if keep.sum() < 3:
        raise ValueError(f"Logan: fewer than 3 frames after t* = {tstar_min} min")
    xs = (running_integral(timing, ref) + ref / k2prime_per_min)[keep] / y[keep]
    ys = running_integral(timing, y)[keep] / y[keep]
    w = np.ones(int(keep.sum())) if weights is None else np.asarray(weights, float)[keep]
    coef, cov, wrss = _weighted_linear_fit(np.column_stack([xs, np.ones_like(xs)]), ys, w)
    return RegionalFit("LoganRef", float(coef[0] - 1.0), k2prime_per_min=k2prime_per_min,
                       bpnd_se=_se(cov, 0), wrss=wrss, n_frames_fitted=int(keep.sum()))


def estimate_k2prime(fits: list[RegionalFit]) -> float:
    """k2' = k2 / R1 of the reference region, as the median over SRTM fits that are not on a
    bound (1/min). Regions with higher binding give the most stable estimates; pass those."""
    values = [f.k2prime_per_min for f in fits
              if not f.on_bound and np.isfinite(f.k2prime_per_min) and f.k2prime_per_min > 0]
    if not values:
        raise ValueError("cannot estimate k2': every SRTM fit is on a bound or failed; "
                         "give k2' explicitly")
    return float(np.median(values))
