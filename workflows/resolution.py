"""Image-resolution arithmetic shared by the pipeline and the simulator (no nipype here).

Resolutions are Gaussian: a full width at half maximum (FWHM, mm) is 2 sqrt(2 ln 2) standard
deviations, and independent blurs add their variances."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def linear_interpolation_variance_mm2(voxel_mm: float) -> float:
    """Variance (mm^2) that linear interpolation adds along an axis of voxel size ``voxel_mm``
    when sampling at arbitrary sub-voxel positions: u (1 - u) v^2 at fraction u of a voxel,
    v^2 / 6 on average over u."""
    return voxel_mm ** 2 / 6.0


def smooth_fwhm(volume: NDArray, fwhm_mm: float, voxel_mm: float) -> NDArray[np.float64]:
    """Gaussian smoothing to ``fwhm_mm`` (FWHM, mm) of a volume with isotropic voxels of
    ``voxel_mm``; a FWHM of 0 returns the volume unchanged (as float64)."""
    if fwhm_mm <= 0:
        return np.asarray(volume, dtype=np.float64)
    return ndimage.gaussian_filter(np.asarray(volume, dtype=np.float64),
                                   fwhm_mm * FWHM_TO_SIGMA / voxel_mm)
