"""Least-squares helpers shared by the models: weighted linear fits, bounded nonlinear fits from
several starts, covariance from the Jacobian, and warnings for estimates on a bound."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

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
                   upper: NDArray[np.float64], n_polished: int | None = None):
    """Bounded trust-region least squares from every start (or, with ``n_polished``, from the
    starts of lowest cost only: a cost costs one evaluation, a fit hundreds); the lowest
    cost wins."""
    from scipy.optimize import least_squares   # imported here: CLIs start faster
    starts = [np.clip(x0, lower + 1e-9, upper - 1e-9) for x0 in starts]
    if n_polished is not None and n_polished < len(starts):
        costs = [float(np.sum(residuals(x0) ** 2)) for x0 in starts]
        starts = [starts[i] for i in np.argsort(costs, kind="stable")[:n_polished]]
    best = None
    for x0 in starts:
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


def weighted_line_fits(x1: NDArray[np.float64], x2: NDArray[np.float64],
                       y: NDArray[np.float64], w: NDArray[np.float64]
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                                  NDArray[np.int64]]:
    """Weighted least squares of y ~ b1 x1 + b2 x2 for many TACs at once, by the closed-form
    2 x 2 normal equations: ``x1``, ``x2``, ``y`` and ``w`` broadcast to (n, frames); a frame
    with weight 0 is left out. Returns the coefficients (n, 2), their covariance (n, 2, 2;
    (X'WX)^-1 wRSS / dof, NaN without degrees of freedom), the weighted RSS (n,) and the
    number of frames used (n,). NaN coefficients where the design is singular."""
    shape = np.broadcast_shapes(x1.shape, x2.shape, y.shape, w.shape)
    wx1, wx2 = w * x1, w * x2

    def dot(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.einsum("...f,...f->...", a, b)

    s11, s12, s22, t1, t2 = dot(wx1, x1), dot(wx1, x2), dot(wx2, x2), dot(wx1, y), dot(wx2, y)
    det = s11 * s22 - s12 * s12
    with np.errstate(divide="ignore", invalid="ignore"):
        det = np.where(np.abs(det) > 1e-12 * np.abs(s11 * s22), det, np.nan)
        b1 = (s22 * t1 - s12 * t2) / det
        b2 = (s11 * t2 - s12 * t1) / det
        # at the least-squares solution the weighted RSS is y'Wy - b'X'Wy: no residual array
        wrss = np.maximum(dot(w * y, y) - b1 * t1 - b2 * t2, 0.0)
        used = np.broadcast_to(w > 0, shape).sum(-1)
        scale = np.where(used > 2, wrss / (used - 2), np.nan) / det
    cov = np.empty(b1.shape + (2, 2))
    cov[..., 0, 0], cov[..., 1, 1] = s22 * scale, s11 * scale
    cov[..., 0, 1] = cov[..., 1, 0] = -s12 * scale
    return np.stack([b1, b2], axis=-1), cov, wrss, used.astype(np.int64)


def usable_cpus() -> int:
    """CPUs this process may run on (affinity-aware, e.g. under SLURM or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def in_chunks(n: int, fit_chunk: Callable[[slice], dict[str, NDArray]],
              chunk: int = 16384) -> dict[str, NDArray]:
    """``fit_chunk`` on consecutive slices of ``n`` TACs, its arrays joined: bounded memory for
    a vectorised fit of a whole image; the chunks run on the usable CPUs' threads (numpy
    releases the GIL), each with single-threaded BLAS."""
    slices = [slice(lo, min(lo + chunk, n)) for lo in range(0, max(n, 1), chunk)]
    workers = min(usable_cpus(), len(slices))
    with threadpool_limits(1):
        if workers <= 1:
            parts = [fit_chunk(part) for part in slices]
        else:
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(fit_chunk, slices))
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
