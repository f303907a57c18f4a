"""Subject anatomy: the MNI template and atlas deformed by a random affine and a smooth
nonlinear warp, and a T1w image with a head around the brain, bias field and noise.

Convention: a subject's native space is its scanner space in mm. ``SubjectWarp`` maps native
points to MNI points (x_mni = A x_native + d(x_native)), so images are made by pulling MNI
values back to each native voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from workflows.imaging.atlas import Grid
from workflows.imaging.geometry import rotation_matrix


@dataclass(frozen=True)
class SubjectWarp:
    """x_mni = affine[:3, :3] @ x + affine[:3, 3] + displacement(x), all in mm."""

    affine: NDArray[np.float64]                # 4x4, native -> MNI
    ctrl_origin: NDArray[np.float64]           # (3,) native mm of control point (0, 0, 0)
    ctrl_spacing_mm: float
    ctrl_displacement: NDArray[np.float64]     # (3, nx, ny, nz) mm, dense (every ~4 mm)

    def __call__(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        pts = np.asarray(points, dtype=np.float64)
        out = pts @ self.affine[:3, :3].T + self.affine[:3, 3]
        coords = ((pts - self.ctrl_origin) / self.ctrl_spacing_mm).T
        for axis in range(3):
            out[:, axis] += ndimage.map_coordinates(self.ctrl_displacement[axis], coords,
                                                    order=1, mode="nearest")
        return out


def random_warp(rng: np.random.Generator, mni_box: tuple[NDArray, NDArray],
                warp_mm: float = 2.0, spacing_mm: float = 40.0) -> SubjectWarp:
    """A random head: size (scaling 0.92-1.08 per axis), orientation (up to 8 degrees per axis),
    position (up to 15 mm, plus an arbitrary scanner offset), and a smooth displacement of about
    ``warp_mm`` (SD) on control points every ``spacing_mm``."""
    scale = rng.uniform(0.92, 1.08, 3)
    angles = np.deg2rad(rng.uniform(-8, 8, 3))
    shift = rng.uniform(-15, 15, 3) + np.array([0.0, 20.0, -10.0])
    to_mni = np.eye(4)
    to_mni[:3, :3] = rotation_matrix(*angles) @ np.diag(1.0 / scale)
    to_mni[:3, 3] = shift
    lo, hi = mni_box
    inv = np.linalg.inv(to_mni)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    native = corners @ inv[:3, :3].T + inv[:3, 3]
    origin = native.min(axis=0) - 2 * spacing_mm
    n = np.ceil((native.max(axis=0) + 2 * spacing_mm - origin) / spacing_mm).astype(int) + 1
    disp = rng.normal(0.0, warp_mm, (3, *n))
    disp = np.stack([ndimage.gaussian_filter(d, 0.7) for d in disp])
    disp *= warp_mm / max(float(disp.std()), 1e-9)
    # a smooth (cubic) dense field every 4 mm, evaluated by linear interpolation: cheap per point
    factor = spacing_mm / 4.0
    dense = np.stack([ndimage.zoom(d, factor, order=3, mode="nearest", grid_mode=False)
                      for d in disp])
    spacing = spacing_mm * (n[0] - 1) / (dense.shape[1] - 1)
    return SubjectWarp(to_mni, origin, spacing, dense)


def native_grid_around(warp: SubjectWarp, mni_box: tuple[NDArray, NDArray], voxel_mm: float,
                       margin_mm: float) -> Grid:
    """An axis-aligned native grid covering the MNI box mapped to native space, plus a margin."""
    lo, hi = mni_box
    inv = np.linalg.inv(warp.affine)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    native = corners @ inv[:3, :3].T + inv[:3, 3]
    start = np.floor((native.min(axis=0) - margin_mm) / voxel_mm) * voxel_mm
    stop = native.max(axis=0) + margin_mm
    shape = tuple(int(v) for v in np.ceil((stop - start) / voxel_mm) + 1)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = start
    return Grid(shape, affine)


def sample_image(img: nib.Nifti1Image | tuple[NDArray, NDArray], points_mm: NDArray[np.float64],
                 order: int) -> NDArray[np.float64]:
    """Values of an image (or (data, affine)) at world points; 0 outside."""
    data, affine = (np.asarray(img.dataobj), img.affine) if isinstance(img, nib.Nifti1Image) \
        else img
    inv = np.linalg.inv(affine)
    coords = (points_mm @ inv[:3, :3].T + inv[:3, 3]).T
    return ndimage.map_coordinates(np.asarray(data, dtype=np.float64 if order else data.dtype),
                                   coords, order=order, mode="constant", cval=0.0)


def template_brain(template_values: NDArray, labelled: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The brain as the template outlines it: the atlas labels (``labelled``) and the template's
    non-zero voxels around them (the labels stop 1-4 mm inside the template's outline: cortex
    partial-volumed with CSF)."""
    level = float(np.percentile(template_values[labelled], 95))
    return ndimage.binary_fill_holes(labelled | (template_values > 0.05 * level))


def _inside_ellipsoid(mni: NDArray[np.float64], centre: tuple[float, float, float],
                     radii: tuple[float, float, float]) -> NDArray[np.bool_]:
    return (((mni - np.array(centre)) / np.array(radii)) ** 2).sum(axis=1) <= 1.0


def face_and_neck(mni: NDArray[np.float64], level: float) -> NDArray[np.float64]:
    """Intensities of a face and neck at points given in MNI mm (0 elsewhere): soft tissue
    (0.45 of white matter) under a bright fat layer (1.0), with dark eyes (0.15) in bright
    orbital fat, a nose, and a neck with a vertebral column; drawn in MNI space so that each
    head's warp deforms them with its brain."""
    x, y, z = mni.T
    face = _inside_ellipsoid(mni, (0, 50, -42), (58, 50, 38)) & (y > 5)
    nose = _inside_ellipsoid(mni, (0, 98, -40), (12, 16, 24))
    neck = ((x / 42) ** 2 + ((y + 22) / 42) ** 2 <= 1) & (z < -38)
    tissue = face | nose | neck
    inner = (_inside_ellipsoid(mni, (0, 50, -42), (52, 44, 32)) & (y > 5)) | \
        ((x / 37) ** 2 + ((y + 22) / 37) ** 2 <= 1) & (z < -38)
    out = np.where(tissue, 1.0, 0.0)                   # fat under the skin
    out[inner] = 0.45                                  # muscle
    for side in (-32.0, 32.0):
        out[_inside_ellipsoid(mni, (side, 54, -30), (17, 17, 15))] = 1.1     # orbital fat
        out[_inside_ellipsoid(mni, (side, 56, -30), (12, 12, 12))] = 0.15    # the eye
    out[(x ** 2 + (y + 32) ** 2 <= 12 ** 2) & (z < -40)] = 0.6             # vertebrae
    return out * level


# how close to the brain defacing removes the face (mm): pydeface's face mask and quickshear's
# plane stay about this far from it (docs/validation.md, "Defacing tools")
DEFACE_MARGIN_MM = 10.0


def deface(image: NDArray, mni: NDArray[np.float64], brain: NDArray[np.bool_],
           voxel_mm: float, margin_mm: float = DEFACE_MARGIN_MM) -> NDArray:
    """The image with its face removed as defacing tools do (voxels set to 0): everything in
    front of and below the plane z = 0.75 y - 45 (MNI mm: under the brow, through the eyes,
    the nose and the jaw), except the brain and ``margin_mm`` around it (smaller: a harsher
    tool)."""
    keep = ndimage.distance_transform_edt(~brain, sampling=voxel_mm) <= margin_mm
    face = (mni[:, 2] < 0.75 * mni[:, 1] - 45).reshape(image.shape) & ~keep
    return np.where(face, 0, image)


def synthesize_t1w(template: nib.Nifti1Image, warp: SubjectWarp, grid: Grid,
                   rng: np.random.Generator, labelled: NDArray[np.bool_],
                   noise_fraction: float = 0.02, bias_fraction: float = 0.15,
                   defaced: bool = False, deface_margin_mm: float = DEFACE_MARGIN_MM
                   ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """A T1w head: the template brain pulled into native space, within the template's outline
    around the atlas's labelled voxels (``labelled``; :func:`template_brain`: the unlabelled
    rim holds activity in the PET too, so both images have the same outline), surrounded by
    CSF, skull and a bright scalp (layers at 0-3, 3-9 and 9-15 mm from the brain) and beyond
    them a face and neck (:func:`face_and_neck`), multiplied by a smooth bias field (about
    +-``bias_fraction``), with Rician noise (SD ``noise_fraction`` of white matter); with
    ``defaced`` the face removed afterwards up to ``deface_margin_mm`` from the brain
    (:func:`deface`). Returns the image and the brain mask (truth)."""
    vox = float(abs(grid.affine[0, 0]))
    points = grid.world_coordinates()
    mni = warp(points)
    brain = sample_image(template, mni, order=1).reshape(grid.shape)
    wm_level = float(np.percentile(brain[labelled], 95))
    brain_mask = template_brain(brain, labelled)
    distance = ndimage.distance_transform_edt(~brain_mask, sampling=vox)
    head = face_and_neck(mni, wm_level).reshape(grid.shape)
    head[(distance > 0) & (distance <= 3)] = 0.3 * wm_level
    head[(distance > 3) & (distance <= 9)] = 0.08 * wm_level
    head[(distance > 9) & (distance <= 15)] = 1.05 * wm_level
    head = ndimage.gaussian_filter(head, 1.0 / vox)
    image = np.where(brain_mask, brain, head)
    bias = ndimage.gaussian_filter(rng.standard_normal(tuple(max(s // 8, 2) for s in grid.shape)),
                                   1.5)
    bias = ndimage.zoom(bias / (bias.std() or 1.0), np.array(grid.shape) /
                        np.array(bias.shape), order=1)[tuple(slice(0, s) for s in grid.shape)]
    image = image * np.exp(bias_fraction * bias)
    sd = noise_fraction * wm_level
    image = np.sqrt((image + rng.normal(0, sd, grid.shape)) ** 2 +
                    rng.normal(0, sd, grid.shape) ** 2)
    if defaced:
        image = deface(image, mni, brain_mask, vox, deface_margin_mm)
    return (image * (1000.0 / wm_level)).astype(np.float32), brain_mask
