"""Resolution arithmetic: FWHM of a Gaussian and the blur that linear interpolation adds."""

import numpy as np
import pytest
from scipy import ndimage

from workflows.resolution import linear_interpolation_variance_mm2, smooth_fwhm


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
