"""The Logan reference plot (Logan et al. 1996), regional and voxelwise: for frames with
mid-time >= t* (and activity above 0),

    int_0^T C_T / C_T(T) = DVR (int_0^T C_R + C_R(T) / k2') / C_T(T) + b;   BPND = DVR - 1

k2' = inf (``--k2prime none``) drops the C_R(T) / k2' term, as commonly done for [11C]PiB.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..convolution import running_integral
from ..fitting import in_chunks, standard_error, weighted_line_fits, weighted_linear_fit
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
    return {"BPND": float(coef[0] - 1.0),
            "k2prime": k2prime_per_min if np.isfinite(k2prime_per_min) else np.nan,
            "BPND_se": standard_error(cov, 0), "wrss": wrss, "n_frames": int(keep.sum())}


def fit_many(timing: FrameTiming, ref: NDArray[np.float64], tacs: NDArray[np.float64],
             weights: ArrayLike | None, k2prime_per_min: float, tstar_min: float
             ) -> dict[str, NDArray[np.float64]]:
    """:func:`fit_one` for (n, frames) TACs at once; NaN for a TAC with fewer than 3 frames
    above 0 after t*."""
    after = timing.mid_min >= tstar_min
    if after.sum() < 3:
        raise ValueError(f"Logan: fewer than 3 frames after t* = {tstar_min} min")
    x_ref = (running_integral(timing, ref) + ref / k2prime_per_min)[after]
    w_all = np.ones(timing.n_frames) if weights is None else np.asarray(weights, float)
    w_after = w_all[after]

    def chunk(part: slice) -> dict[str, NDArray[np.float64]]:
        y_all = np.ascontiguousarray(tacs[part], dtype=np.float64)
        y = y_all[:, after]
        keep = y > 0
        safe = np.where(keep, y, 1.0)
        xs = np.where(keep, x_ref / safe, 0.0)
        ys = np.where(keep, running_integral(timing, y_all)[:, after] / safe, 0.0)
        coef, cov, wrss, used = weighted_line_fits(xs, np.ones_like(xs), ys, w_after * keep)
        few = used < 3
        return {"BPND": np.where(few, np.nan, coef[:, 0] - 1.0),
                "BPND_se": np.where(few, np.nan, np.sqrt(cov[:, 0, 0])),
                "wrss": wrss, "n_frames": used}

    return in_chunks(len(tacs), chunk)


MODEL = FixedK2PrimeModel(
    name="logan-ref", label="LoganRef", title="Logan reference plot",
    citation="the Logan reference plot [@logan1996]", parameters=("BPND", "k2prime"),
    fit_one=fit_one, default_tstar_min=15.0, srtm_curve=False, fit_many=fit_many,
    maps=("BPND",), k2prime_optional=True)
