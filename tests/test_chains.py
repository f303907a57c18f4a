"""The transform chains between PET, T1w and MNI space (workflows/imaging/chains.py) against
point-by-point geometry.

A PET image whose world lies far from the T1w's (40 mm and 12 degrees apart, as scans from two
scanners often are) and a T1w -> MNI affine with its own rotation and scale: the two do not
commute, so a chain that applies the rigid on the wrong side of the normalisation lands
millimetres off. Images whose values are their own physical coordinates make the check exact:
linear interpolation of a linear function returns the point it sampled.
"""

from __future__ import annotations

import ants
import numpy as np
import pytest

from workflows.imaging.chains import mni_to_pet, pet_to_mni


def coordinate_images(image) -> list:
    """Three images on ``image``'s grid holding the physical (ITK) x, y and z of each voxel."""
    index = np.indices(image.shape, dtype=np.float64)
    direction = np.asarray(image.direction)
    points = np.tensordot(direction, index * np.asarray(image.spacing)[:, None, None, None],
                          axes=1) + np.asarray(image.origin)[:, None, None, None]
    return [image.new_image_like(points[k].astype(np.float32)) for k in range(3)]


def rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


@pytest.fixture(scope="module")
def spaces(tmp_path_factory):
    root = tmp_path_factory.mktemp("chains")
    grid = dict(spacing=(2.0, 2.0, 2.0), origin=(-60.0, -60.0, -50.0))
    mni = ants.from_numpy(np.zeros((60, 60, 50), np.float32), **grid)
    pet = ants.from_numpy(np.zeros((30, 30, 25), np.float32), spacing=(4.0, 4.0, 4.0),
                          origin=(-10.0, -30.0, 20.0))
    # registration's direction: the T1w -> MNI affine maps MNI points to T1w points, the
    # PET -> T1w rigid maps T1w points to PET points
    affine = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3,
        matrix=1.08 * rotation(0, 9.0) @ rotation(2, -6.0), translation=(4.0, -7.0, 11.0))
    rigid = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=rotation(1, 12.0),
        translation=(40.0, -15.0, 25.0))
    # the normalisation's ITK composite files, as petbind and PETPrep write them
    paths = {"t1w2mni": str(root / "t1w_to_mni_Composite.h5"),
             "mni2t1w": str(root / "t1w_to_mni_InverseComposite.h5"),
             "rigid": str(root / "pet_to_t1w_0GenericAffine.mat")}
    ants.write_transform(ants.compose_ants_transforms([affine]), paths["t1w2mni"])
    ants.write_transform(ants.compose_ants_transforms([affine.invert()]), paths["mni2t1w"])
    ants.write_transform(rigid, paths["rigid"])
    return {"mni": mni, "pet": pet, "affine_tx": affine, "rigid_tx": rigid, **paths}


def test_an_mni_image_lands_on_the_pet_grid_through_t1w(spaces):
    # each PET voxel samples the MNI point A^-1(R^-1(p)): back to T1w, then to MNI
    transforms, invert = mni_to_pet(spaces["mni2t1w"], spaces["rigid"])
    sampled = np.stack([ants.apply_transforms(spaces["pet"], image, transforms,
                                              interpolator="linear",
                                              whichtoinvert=invert).numpy()
                        for image in coordinate_images(spaces["mni"])], axis=-1)
    to_t1w, to_mni = spaces["rigid_tx"].invert(), spaces["affine_tx"].invert()
    pet_points = np.stack([c.numpy() for c in coordinate_images(spaces["pet"])], axis=-1)
    checked = 0
    for index in np.ndindex(*spaces["pet"].shape):
        if index[0] % 4 or index[1] % 4 or index[2] % 4:
            continue
        expected = np.array(to_mni.apply_to_point(to_t1w.apply_to_point(
            tuple(float(v) for v in pet_points[index]))))
        if np.all(np.abs(expected - np.array([0.0, 0.0, 0.0])) < 48):   # inside the MNI grid
            np.testing.assert_allclose(sampled[index], expected, atol=1e-2)
            checked += 1
    assert checked > 50


def test_a_pet_image_lands_on_the_mni_grid_through_t1w(spaces):
    # each MNI voxel samples the PET point R(A(m)): to T1w, then to PET
    transforms, invert = pet_to_mni(spaces["rigid"], spaces["t1w2mni"])
    sampled = np.stack([ants.apply_transforms(spaces["mni"], image, transforms,
                                              interpolator="linear",
                                              whichtoinvert=invert).numpy()
                        for image in coordinate_images(spaces["pet"])], axis=-1)
    mni_points = np.stack([c.numpy() for c in coordinate_images(spaces["mni"])], axis=-1)
    pet = spaces["pet"]
    low = np.asarray(pet.origin) + 4.0
    high = np.asarray(pet.origin) + (np.asarray(pet.shape) - 2) * np.asarray(pet.spacing)
    checked = 0
    for index in np.ndindex(*spaces["mni"].shape):
        if index[0] % 4 or index[1] % 4 or index[2] % 4:
            continue
        expected = np.array(spaces["rigid_tx"].apply_to_point(spaces["affine_tx"].apply_to_point(
            tuple(float(v) for v in mni_points[index]))))
        if np.all((expected > low) & (expected < high)):          # inside the PET grid
            np.testing.assert_allclose(sampled[index], expected, atol=1e-2)
            checked += 1
    assert checked > 50
