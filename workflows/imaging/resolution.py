"""Image-resolution arithmetic shared by the pipeline and the simulator (no nipype here).

Resolutions are Gaussian: a full width at half maximum (FWHM, mm) is 2 sqrt(2 ln 2) standard
deviations, and independent blurs add their variances."""

from __future__ import annotations

import functools
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


# sub-voxel fractions at which :func:`bspline_resampling_variance_mm2` is tabulated
_FRACTIONS = np.linspace(0.0, 0.5, 11)


@functools.lru_cache(maxsize=32)
def _bspline_variance_table(voxel_mm: float, fwhm_mm: float) -> NDArray[np.float64]:
    """:func:`bspline_resampling_variance_mm2` at :data:`_FRACTIONS` (it is symmetric in u)."""
    from scipy import optimize, special

    sd = fwhm_mm * FWHM_TO_SIGMA
    k = np.arange(-12, 13)
    edges = np.linspace(0.0, 1.0, 8, endpoint=False)        # edge positions within a voxel

    def edge(x_mm, sd_mm):
        return 0.5 * (1.0 + special.erf(x_mm / (sd_mm * math.sqrt(2.0))))

    def spill(values, e):
        """Activity (mm) on the wrong side of a unit edge at voxel position e."""
        x = k - e
        return (values[x < 0].sum() + (1.0 - values[x > 0]).sum()) * voxel_mm

    table = np.zeros(_FRACTIONS.size)
    for j, u in enumerate(_FRACTIONS[1:], start=1):
        resampled = np.mean([spill(ndimage.map_coordinates(
            edge((k + u - e) * voxel_mm, sd), [np.arange(k.size) - u], order=3,
            mode="nearest"), e) for e in edges])

        def excess(var):
            return np.mean([spill(edge((k - e) * voxel_mm, math.sqrt(sd ** 2 + var)), e)
                            for e in edges]) - resampled
        table[j] = optimize.brentq(excess, 0.0, voxel_mm ** 2) if excess(0.0) < 0 else 0.0
    return table


def bspline_resampling_variance_mm2(fraction: NDArray[np.float64], voxel_mm: float,
                                    fwhm_mm: float) -> NDArray[np.float64]:
    """Variance (mm^2) that cubic B-spline interpolation (ANTs' and PETPrep's resampling) adds
    along an axis of voxel size ``voxel_mm`` when it samples an image of resolution ``fwhm_mm``
    at fraction ``fraction`` of a voxel: that of the Gaussian blur that spills as much activity
    across an edge as resampling does (mean over edge positions), which is what partial-volume
    correction must model. A cubic spline reproduces quadratics, so it blurs a well-sampled
    image little; where the voxels are coarse for the resolution, the detail near the sampling
    limit is lost (docs/validation.md)."""
    u = np.asarray(fraction, dtype=np.float64) % 1.0
    return np.interp(np.minimum(u, 1.0 - u), _FRACTIONS,
                     _bspline_variance_table(round(float(voxel_mm), 4), round(float(fwhm_mm), 4)))


def mean_resampling_variance_mm2(voxel_mm: float, fwhm_mm: float) -> float:
    """:func:`bspline_resampling_variance_mm2` averaged over fractions uniform in a voxel: the
    blur of one resampling at an unknown pose."""
    return float(bspline_resampling_variance_mm2(np.linspace(0.0, 1.0, 201), voxel_mm,
                                                 fwhm_mm).mean())


def realignment_variance_mm2(motion: NDArray[np.float64], affine: NDArray[np.float64],
                             voxels: NDArray[np.integer], fwhm_mm: float) -> NDArray[np.float64]:
    """(frames, 3): per frame and axis, the variance (mm^2) that motion correction's cubic
    B-spline resampling added to a frame of resolution ``fwhm_mm``, averaged over ``voxels``
    (3 x n indices of the realigned grid, e.g. the brain's). Realigned voxel x took the
    frame's value at R x + t, at fraction u between the frame's voxels
    (:func:`bspline_resampling_variance_mm2`). ``motion``: (frames, 6) translations (mm) and
    rotations (rad, R = Rz Ry Rx) of the head's pose in each frame relative to the reference,
    RAS, as in ``_motion.tsv``; ``affine``: the PET grid's voxel -> RAS mm."""
    to_voxel = np.linalg.inv(affine)
    world = affine[:3, :3] @ voxels + affine[:3, 3:4]
    voxel_mm = voxel_sizes(affine)
    out = np.empty((len(motion), 3))
    for f, pose in enumerate(np.asarray(motion, dtype=np.float64)):
        sampled = to_voxel[:3, :3] @ (rotation_matrix(*pose[3:6]) @ world + pose[:3, None]) \
            + to_voxel[:3, 3:4]
        for axis in range(3):
            out[f, axis] = bspline_resampling_variance_mm2(sampled[axis], voxel_mm[axis],
                                                           fwhm_mm).mean()
    return out
