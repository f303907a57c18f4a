"""Image-resolution arithmetic shared by the pipeline and the simulator (no nipype here).

Resolutions are Gaussian: a full width at half maximum (FWHM, mm) is 2 sqrt(2 ln 2) standard
deviations, and independent blurs add their variances."""

from __future__ import annotations

import math

import numpy as np
from nibabel.affines import voxel_sizes
from numpy.typing import NDArray
from scipy import ndimage

from workflows.imaging.geometry import rotation_matrix

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
FINE_VOXEL_MM = 1.5


def fine_factors(pet_voxel_mm: tuple[float, float, float]) -> tuple[int, int, int]:
    """Per axis, how many voxels of a grid finer than the PET grid span one PET voxel (fine
    voxels at most :data:`FINE_VOXEL_MM`), as the GTM models the scanner's blur."""
    return tuple(max(1, math.ceil(v / FINE_VOXEL_MM - 1e-6)) for v in pet_voxel_mm)


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


def realignment_variance_mm2(motion: NDArray[np.float64], affine: NDArray[np.float64],
                             voxels: NDArray[np.integer]) -> NDArray[np.float64]:
    """(frames, 3): per frame and axis, the variance (mm^2) that linear interpolation added when
    motion correction resampled the frame, averaged over ``voxels`` (3 x n indices of the
    realigned grid, e.g. the brain's). Realigned voxel x took the frame's value at R x + t,
    between the frame's voxels at fraction u: u (1 - u) v^2 (its mean over u is
    :func:`linear_interpolation_variance_mm2`). ``motion``: (frames, 6) translations (mm) and
    rotations (rad, R = Rz Ry Rx) of the head's pose in each frame relative to the reference,
    RAS, as in ``_motion.tsv``; ``affine``: the PET grid's voxel -> RAS mm."""
    to_voxel = np.linalg.inv(affine)
    world = affine[:3, :3] @ voxels + affine[:3, 3:4]
    voxel_mm = voxel_sizes(affine)
    out = np.empty((len(motion), 3))
    for f, pose in enumerate(np.asarray(motion, dtype=np.float64)):
        sampled = to_voxel[:3, :3] @ (rotation_matrix(*pose[3:6]) @ world + pose[:3, None]) \
            + to_voxel[:3, 3:4]
        u = sampled - np.floor(sampled)
        out[f] = (u * (1.0 - u)).mean(axis=1) * voxel_mm ** 2
    return out
