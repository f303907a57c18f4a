"""The Logan reference plot (Logan et al. 1996), for regional TACs: for frames with mid-time
>= t*,

    int_0^T C_T / C_T(T) = DVR (int_0^T C_R + C_R(T) / k2') / C_T(T) + b;   BPND = DVR - 1
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..convolution import running_integral
from ..fitting import standard_error, weighted_linear_fit
from ..frames import FrameTiming
from ._k2prime import FixedK2PrimeModel


def fit_one(timing: FrameTiming, ref: NDArray[np.float64], y: NDArray[np.float64],
            weights: ArrayLike | None, k2prime_per_min: float, tstar_min: float) -> dict:
    keep = (timing.mid_min >= tstar_min) & (y > 0)
    if keep.sum() < 3:
        raise ValueError(f"Logan: fewer than 3 frames after t* = {tstar_min} min")
    xs = (running_integral(timing, ref) + ref / k2prime_per_min)[keep] / y[keep]
    ys = running_integral(timing, y)[keep] / y[keep]
    w = np.ones(int(keep.sum())) if weights is None else np.asarray(weights, float)[keep]
    coef, cov, wrss = weighted_linear_fit(np.column_stack([xs, np.ones_like(xs)]), ys, w)
    return {"BPND": float(coef[0] - 1.0), "k2prime": k2prime_per_min,
            "BPND_se": standard_error(cov, 0), "wrss": wrss, "n_frames": int(keep.sum())}


MODEL = FixedK2PrimeModel(
    name="logan-ref", label="LoganRef", title="Logan reference plot",
    citation="the Logan reference plot [@logan1996]", parameters=("BPND", "k2prime"),
    fit_one=fit_one, default_tstar_min=15.0, srtm_curve=False)
