"""Rigid-body geometry shared by motion correction, the GTM's resolution model and the
simulator: rotations in RAS millimetres."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def rotation_matrix(rx: float, ry: float, rz: float) -> NDArray[np.float64]:
    """Rotation about x, then y, then z (radians): R = Rz Ry Rx."""
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x
