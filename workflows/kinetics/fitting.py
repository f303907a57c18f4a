"""Least-squares helpers shared by the models: weighted linear fits, bounded nonlinear fits from
several starts, covariance from the Jacobian, and warnings for estimates on a bound."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

NAN = float("nan")


def covariance(jac: NDArray[np.float64], wrss: float) -> NDArray[np.float64]:
    """Parameter covariance of a weighted least-squares fit: (J'J)^-1 wRSS / dof; NaN without
    degrees of freedom or with a singular J'J."""
    dof = jac.shape[0] - jac.shape[1]
    if dof <= 0:
        return np.full((jac.shape[1],) * 2, NAN)
    try:
        return np.linalg.inv(jac.T @ jac) * (wrss / dof)
    except np.linalg.LinAlgError:
        return np.full((jac.shape[1],) * 2, NAN)


def standard_error(cov: NDArray[np.float64], i: int) -> float:
    v = cov[i, i]
    return math.sqrt(v) if np.isfinite(v) and v >= 0 else NAN


def delta_method_se(grad: NDArray[np.float64], cov: NDArray[np.float64]) -> float:
    """SE of a function of the parameters from its gradient (first-order delta method)."""
    var = float(grad @ cov @ grad)
    return math.sqrt(var) if var >= 0 else NAN


def best_of_starts(residuals: Callable[[NDArray[np.float64]], NDArray[np.float64]],
                   starts: list[NDArray[np.float64]], lower: NDArray[np.float64],
                   upper: NDArray[np.float64]):
    """Bounded trust-region least squares from every start; the lowest cost wins."""
    best = None
    for x0 in starts:
        x0 = np.clip(x0, lower + 1e-9, upper - 1e-9)
        res = least_squares(residuals, x0, bounds=(lower, upper), method="trf",
                            x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
        if best is None or res.cost < best.cost:
            best = res
    return best


def bound_warnings(names: list[str], x: NDArray[np.float64], lower: NDArray[np.float64],
                   upper: NDArray[np.float64]) -> list[str]:
    out = []
    for name, v, lo, hi in zip(names, x, lower, upper):
        span = hi - lo
        if v <= lo + 1e-6 * span or v >= hi - 1e-6 * span:
            out.append(f"{name} on its bound ({v:.4g} in [{lo:g}, {hi:g}])")
    return out


def weighted_linear_fit(x: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64]
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Coefficients, their covariance and the weighted RSS of y ~ x with weights w."""
    sw = np.sqrt(w)
    xw, yw = x * sw[:, None], y * sw
    coef, *_ = np.linalg.lstsq(xw, yw, rcond=None)
    resid = yw - xw @ coef
    wrss = float(resid @ resid)
    return coef, covariance(xw, wrss), wrss
