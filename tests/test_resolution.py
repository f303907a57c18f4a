"""Resolution arithmetic: FWHM of a Gaussian and the blur that resampling adds."""

import numpy as np
import pytest
from scipy import ndimage

from workflows.imaging.resolution import (FWHM_TO_SIGMA, bspline_resampling_variance_mm2,
                                          linear_interpolation_variance_mm2,
                                          mean_resampling_variance_mm2, realignment_variance_mm2,
                                          smooth_fwhm)


def test_smoothing_a_point_gives_the_requested_fwhm():
    # A Gaussian's FWHM is 2 sqrt(2 ln 2) = 2.3548 times its SD; the SD is measured here as the
    # square root of the second moment of the smoothed point source, along each axis.
    volume = np.zeros((61, 61, 61))
    volume[30, 30, 30] = 1.0
    blurred = smooth_fwhm(volume, 8.0, 2.0)
    x_mm = (np.arange(61) - 30) * 2.0
    for axis in range(3):
        profile = blurred.sum(axis=tuple(a for a in range(3) if a != axis))
        sd_mm = np.sqrt((profile * x_mm ** 2).sum() / profile.sum())
        assert 2.3548 * sd_mm == pytest.approx(8.0, rel=1e-3), axis
    assert smooth_fwhm(volume, 0.0, 2.0)[30, 30, 30] == 1.0


def test_linear_interpolation_adds_a_sixth_of_the_squared_voxel_on_average():
    # Shifting a point source by a fraction u of a voxel with linear interpolation splits it
    # (1 - u, u) between neighbours: variance about its new centre u (1 - u) v^2. Measured over
    # uniformly spread shifts, the mean added variance is the formula's.
    voxel_mm = 3.0
    point = np.zeros(21)
    point[10] = 1.0
    x_mm = np.arange(21) * voxel_mm
    added = []
    for u in np.linspace(0.0, 1.0, 201):
        shifted = ndimage.shift(point, u, order=1)
        centre = (shifted * x_mm).sum()
        added.append((shifted * (x_mm - centre) ** 2).sum())
    assert np.mean(added) == pytest.approx(linear_interpolation_variance_mm2(voxel_mm), rel=0.01)


def test_bspline_resampling_blurs_little_and_most_at_half_a_voxel():
    # A cubic B-spline reproduces quadratics, so on a well-sampled image (5 mm FWHM on 2 mm
    # voxels) an edge moved by a fraction u of a voxel and resampled back (scipy's spline, as
    # ANTs and PETPrep resample) is the directly sampled edge blurred by the modelled variance
    # within 0.5 % of the edge's height, and that variance is under a tenth of linear
    # interpolation's u (1 - u) v^2. On coarse voxels (2.5 mm FWHM on 3 mm) more is lost, still
    # less than linear interpolation loses. Nothing is added for whole voxels, most for half.
    from scipy import special
    k = np.arange(-12, 13)

    def edge(x_mm, fwhm_mm, var_mm2=0.0):
        sd = np.sqrt((fwhm_mm * FWHM_TO_SIGMA) ** 2 + var_mm2)
        return 0.5 * (1 + special.erf(x_mm / (sd * np.sqrt(2))))

    voxel_mm, fwhm_mm = 2.0, 5.0
    for u in (0.25, 0.5):
        added = bspline_resampling_variance_mm2(np.array([u]), voxel_mm, fwhm_mm)[0]
        assert 0 < added < 0.1 * u * (1 - u) * voxel_mm ** 2
        for e in (0.1, 0.45, 0.8):                  # edge positions within a voxel
            back = ndimage.map_coordinates(edge((k + u - e) * voxel_mm, fwhm_mm),
                                           [np.arange(k.size) - u], order=3, mode="nearest")
            assert np.abs(back - edge((k - e) * voxel_mm, fwhm_mm, added)).max() < 0.005
    coarse = bspline_resampling_variance_mm2(np.linspace(0, 1, 101), 3.0, 2.5)
    assert coarse[[0, 100]] == pytest.approx([0, 0], abs=1e-9)
    assert coarse.argmax() == 50 and coarse[50] < 0.25 * 3.0 ** 2
    assert mean_resampling_variance_mm2(3.0, 2.5) < linear_interpolation_variance_mm2(3.0)


def test_realignment_blur_is_that_of_the_sub_voxel_fraction_each_frame_was_sampled_at():
    # A translation moves every sample point by the same fraction u of a voxel, so a frame's
    # added variance is that of u per axis, nothing for whole voxels. A rotation of 10-15
    # degrees spreads the fractions evenly over the brain: the mean added variance is that of
    # uniform u.
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    affine[:3, 3] = (-40.0, -50.0, -30.0)
    voxels = np.indices((40, 50, 20)).reshape(3, -1)
    poses = np.array([[0.5, 1.0, 0.0, 0.0, 0.0, 0.0],     # u = 1/4, 1/2, 0
                      [4.0, -2.0, 6.0, 0.0, 0.0, 0.0],    # whole voxels
                      [0.3, 0.2, 0.1, 0.2, 0.15, 0.25]])
    fwhm_mm = 2.5
    variance = realignment_variance_mm2(poses, affine, voxels, fwhm_mm)

    def at(u, v):
        return bspline_resampling_variance_mm2(np.array([u]), v, fwhm_mm)[0]
    assert variance[0] == pytest.approx([at(0.25, 2.0), at(0.5, 2.0), 0.0], abs=1e-6)
    assert variance[1] == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert variance[2] == pytest.approx([mean_resampling_variance_mm2(v, fwhm_mm)
                                         for v in (2.0, 2.0, 3.0)], rel=0.05)
