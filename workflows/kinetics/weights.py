"""Frame weights for weighted least squares.

A weight multiplies the squared residual of its frame: the fits minimise sum_j w_j r_j^2, so a
weight is an inverse variance up to a common factor. Every scheme returns weights scaled to a
maximum of 1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .frames import FrameTiming, decay_factors, decay_uncorrect

WeightScheme = Literal["uniform", "duration", "counts", "kinfitr"]
WEIGHT_SCHEMES: tuple[str, ...] = ("uniform", "duration", "counts", "kinfitr")


def frame_weights(scheme: str, timing: FrameTiming, tac: ArrayLike | None = None,
                  radionuclide: str | None = None, decay_reference_s: float = 0.0,
                  min_weight: float = 0.0) -> NDArray[np.float64]:
    """Weights per frame.

    - ``uniform``: 1 for every frame.
    - ``duration``: frame duration.
    - ``counts`` (Magia): the inverse Poisson variance of each frame. Magia fits decay-UNcorrected
      data with weights duration^2 / uncorrected frame total (= duration / uncorrected mean);
      petbind fits decay-corrected data, whose residuals are larger by the decay-correction
      factor DCF, so the same weights become duration / (uncorrected mean x DCF^2)
      = duration / (corrected mean x DCF).
    - ``kinfitr``: sqrt(duration x decay-uncorrected activity), floored at 0.5 of the maximum as
      kinfitr does.

    ``tac`` is a decay-corrected (to ``decay_reference_s``) TAC of a large region, used by the
    count-based schemes, which also need ``radionuclide``.
    """
    d = timing.duration_s
    if scheme == "uniform":
        w = np.ones_like(d)
    elif scheme == "duration":
        w = d.copy()
    elif scheme in ("counts", "kinfitr"):
        if tac is None or radionuclide is None:
            raise ValueError(f"weights {scheme!r} need a TAC and the radionuclide")
        tac = np.asarray(tac, dtype=np.float64)
        if tac.shape != d.shape:
            raise ValueError(f"weights: TAC has {tac.size} frames, timing has {d.size}")
        uncorrected = decay_uncorrect(tac, timing, radionuclide, decay_reference_s)
        # A frame with no activity carries no information about its variance: floor at a small
        # fraction of the peak so that its weight stays finite.
        floor = 1e-3 * float(np.max(np.abs(uncorrected))) if np.any(uncorrected) else 1.0
        uncorrected = np.maximum(uncorrected, floor)
        if scheme == "counts":
            dcf = decay_factors(timing, radionuclide, decay_reference_s)
            w = d**2 / (uncorrected * d) / dcf**2
        else:
            w = np.sqrt(d * uncorrected)
            min_weight = max(min_weight, 0.5)
    else:
        raise ValueError(f"unknown weighting scheme {scheme!r}; use one of {WEIGHT_SCHEMES}")
    w = w / np.max(w)
    return np.maximum(w, min_weight)
