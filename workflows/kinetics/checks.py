"""Values no tracer gives: non-finite, or orders of magnitude off the rest of the data (a
corrupted voxel of 1e30 among Bq/mL in the thousands). Fits on them return nonsense, and one
such voxel in a brain mean changes every frame's weight, so they are refused or excluded before
any fit."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

ABSURD_FACTOR = 1000.0     # times the typical magnitude (:func:`magnitude_scale`)


def magnitude_scale(values: ArrayLike, max_samples: int = 1_000_000) -> float:
    """The typical magnitude of the data: the 90th percentile of the finite non-zero values'
    magnitudes (of an even subsample of at most ``max_samples`` values). A tenth of the values
    may be off without moving it; in an image it lies in the tissue, not the background."""
    flat = np.asarray(values).ravel(order="K")     # memory order: no copy of the image
    sample = np.abs(flat[::max(1, flat.size // max_samples)].astype(np.float64))
    sample = sample[np.isfinite(sample) & (sample > 0)]
    return float(np.percentile(sample, 90)) if sample.size else 0.0


def absurd(values: ArrayLike, scale: float | None = None, factor: float = ABSURD_FACTOR
           ) -> NDArray[np.bool_]:
    """Where ``values`` are non-finite or larger in magnitude than ``factor`` times ``scale``
    (default: :func:`magnitude_scale` of the values themselves)."""
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.floating):
        v = v.astype(np.float64)
    scale = magnitude_scale(v) if scale is None else scale
    with np.errstate(invalid="ignore"):
        if scale > 0:                   # NaN and inf fail the comparison: one pass finds all
            return ~(np.abs(v) <= factor * scale)
        return ~np.isfinite(v)
