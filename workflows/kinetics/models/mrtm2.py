"""MRTM2 (Ichise et al. 2003), linear, regional and voxelwise, over frames with mid-time >= t*:

    C_T(T) = gamma1 (int_0^T C_R + C_R(T) / k2') + gamma2 int_0^T C_T;
    BPND = -(gamma1 / gamma2) - 1,  k2 = gamma1,  R1 = gamma1 / k2',  k2a = -gamma2
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..convolution import running_integral
from ..fitting import (delta_method_se, in_chunks, standard_error, weighted_line_fits,
                       weighted_linear_fit)
from ..frames import FrameTiming
from ._k2prime import FixedK2PrimeModel


def k2prime_by_mrtm(timing: FrameTiming, reference_tac: ArrayLike, tac: ArrayLike,
                    weights: ArrayLike | None, tstar_min: float = 0.0) -> float:
    """k2' (1/min) from one high-binding TAC by Ichise's three-parameter MRTM (the first step
    of the two-step method): C_T(T) = R1 C_R(T) + k2 int_0^T C_R - k2a int_0^T C_T over the
    frames with mid-time >= t*, by weighted least squares; k2' = k2 / R1."""
    ref = np.asarray(reference_tac, dtype=np.float64)
    y = np.asarray(tac, dtype=np.float64)
    w = np.ones(timing.n_frames) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = timing.mid_min >= tstar_min
    if keep.sum() < 4:
        raise ValueError(f"MRTM: fewer than 4 frames after t* = {tstar_min} min")
    x = np.column_stack([ref, running_integral(timing, ref), running_integral(timing, y)])
    (r1, k2, _), _, _ = weighted_linear_fit(x[keep], y[keep], w[keep])
    if not (r1 > 0 and k2 > 0):
        raise ValueError(f"MRTM gives R1 {r1:.3g} and k2 {k2:.3g}: no positive k2'; choose a "
                         "region with more binding")
    return float(k2 / r1)


def fit_one(timing: FrameTiming, ref: NDArray[np.float64], y: NDArray[np.float64],
            weights: ArrayLike, k2prime_per_min: float, tstar_min: float) -> dict:
    w = np.asarray(weights, dtype=np.float64)
    keep = timing.mid_min >= tstar_min
    if keep.sum() < 3:
        raise ValueError(f"MRTM2: fewer than 3 frames after t* = {tstar_min} min")
    x = np.column_stack([running_integral(timing, ref) + ref / k2prime_per_min,
                         running_integral(timing, y)])[keep]
    coef, cov, wrss = weighted_linear_fit(x, y[keep], w[keep])
    g1, g2 = coef
    grad = np.array([-1.0 / g2, g1 / g2**2])
    return {"BPND": float(-g1 / g2 - 1.0), "R1": float(g1 / k2prime_per_min), "k2": float(g1),
            "k2a": float(-g2), "k2prime": k2prime_per_min, "BPND_se": delta_method_se(grad, cov),
            "R1_se": standard_error(cov, 0) / k2prime_per_min, "k2_se": standard_error(cov, 0),
            "wrss": wrss, "n_frames": int(keep.sum())}


def fit_many(timing: FrameTiming, ref: NDArray[np.float64], tacs: NDArray[np.float64],
             weights: ArrayLike, k2prime_per_min: float, tstar_min: float
             ) -> dict[str, NDArray[np.float64]]:
    """:func:`fit_one` for (n, frames) TACs at once (closed-form weighted least squares)."""
    keep = timing.mid_min >= tstar_min
    if keep.sum() < 3:
        raise ValueError(f"MRTM2: fewer than 3 frames after t* = {tstar_min} min")
    x1 = (running_integral(timing, ref) + ref / k2prime_per_min)[keep]
    w = np.asarray(weights, dtype=np.float64)[keep]

    def chunk(part: slice) -> dict[str, NDArray[np.float64]]:
        y = np.ascontiguousarray(tacs[part], dtype=np.float64)
        coef, cov, wrss, used = weighted_line_fits(
            x1[None], running_integral(timing, y)[:, keep], y[:, keep], w[None])
        g1, g2 = coef[:, 0], coef[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = np.stack([-1.0 / g2, g1 / g2**2], axis=1)
            bpnd_var = np.einsum("ni,nij,nj->n", grad, cov, grad)
            return {"BPND": -g1 / g2 - 1.0, "R1": g1 / k2prime_per_min, "k2": g1, "k2a": -g2,
                    "BPND_se": np.sqrt(bpnd_var), "R1_se": np.sqrt(cov[:, 0, 0]) /
                    k2prime_per_min, "k2_se": np.sqrt(cov[:, 0, 0]), "wrss": wrss,
                    "n_frames": used}

    return in_chunks(len(tacs), chunk)


MODEL = FixedK2PrimeModel(
    name="mrtm2", label="MRTM2", title="MRTM2 (Ichise), linear", citation="MRTM2 [@mrtm2]",
    parameters=("BPND", "R1", "k2", "k2a", "k2prime"), fit_one=fit_one, default_tstar_min=0.0,
    fit_many=fit_many, maps=("BPND", "R1", "k2"))
