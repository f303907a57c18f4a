"""SRTM2 (Wu & Carson 2002): SRTM with the reference region's efflux k2' fixed, for regional TACs.

    C_T = R1 C_R + R1 (k2' - k2a) C_R (*) exp(-k2a t);   BPND = R1 k2' / k2a - 1
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..convolution import ReferenceConvolver
from ..fitting import best_of_starts, bound_warnings, covariance, delta_method_se, standard_error
from ..frames import FrameTiming
from ._k2prime import FixedK2PrimeModel
from .srtm import BOUNDS


# least squares runs from the starts of lowest cost only (a start's cost is one evaluation)
N_POLISHED = 3


def fit_one(timing: FrameTiming, ref: NDArray[np.float64], y: NDArray[np.float64],
            weights: ArrayLike, k2prime_per_min: float) -> dict:
    sw = np.sqrt(np.asarray(weights, dtype=np.float64))
    convolve = ReferenceConvolver(timing, ref)
    lower = np.array([BOUNDS["R1"][0], 1e-4], float)
    upper = np.array([BOUNDS["R1"][1], BOUNDS["k2"][1]], float)

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        r1, k2a = x
        conv = convolve([k2a])[0]
        return sw * (y - (r1 * ref + r1 * (k2prime_per_min - k2a) * conv))

    starts = [np.array([r1, k2a]) for r1 in (0.6, 1.0, 1.5) for k2a in (0.01, 0.05, 0.2, 0.5)]
    res = best_of_starts(residuals, starts, lower, upper, n_polished=N_POLISHED)
    r1, k2a = res.x
    wrss = float(2.0 * res.cost)
    cov = covariance(res.jac, wrss)
    grad = np.array([k2prime_per_min / k2a, -r1 * k2prime_per_min / k2a**2])
    warnings = bound_warnings(["R1", "k2a"], res.x, lower, upper)
    return {"BPND": float(r1 * k2prime_per_min / k2a - 1.0), "R1": float(r1),
            "k2": float(r1 * k2prime_per_min), "k2a": float(k2a), "k2prime": k2prime_per_min,
            "BPND_se": delta_method_se(grad, cov), "R1_se": standard_error(cov, 0),
            "k2_se": standard_error(cov, 0) * k2prime_per_min, "wrss": wrss,
            "n_frames": y.size, "on_bound": bool(warnings), "warnings": warnings}


MODEL = FixedK2PrimeModel(
    name="srtm2", label="SRTM2", title="SRTM2 (k2' fixed) by bounded nonlinear least squares",
    citation="SRTM2 [@srtm2]", parameters=("BPND", "R1", "k2", "k2a", "k2prime"),
    fit_one=fit_one)
