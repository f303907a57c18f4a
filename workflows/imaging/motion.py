"""Head-motion correction: rigid realignment of PET frames to a robust reference.

The reference is the duration-weighted mean of the frames after ``ref_start_s`` (120 s by default,
as PETPrep: early frames have few counts and little anatomy), smoothed. Frames starting before
that are not registered (too few counts to register reliably): they take the transform of the
first registered frame. Two passes, as SPM realign in Magia: register to the reference, rebuild
the reference from the realigned frames, register again (the second pass starts from the first's
transform, at the finest level only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workflows.kinetics.metadata import PETMetadata

FD_RADIUS_MM = 50.0
REGISTRATION_MM = 4.0   # finest grid of the frame registrations (mm)
# fraction of the grid's voxels the metric samples: 5 % of a head on a 4 mm grid is some 10^4
# points, ample for six parameters (time and accuracy against ANTs' default 20 %:
# docs/validation.md)
SAMPLING_RATE = 0.05


# ITK stores physical points in LPS; nibabel/BIDS in RAS: flip x and y.
LPS = np.diag([-1.0, -1.0, 1.0])


def rigid_parameters(matrix: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Translation (mm) and Euler angles (rad, R = Rz Ry Rx) of x -> M x + t, in RAS."""
    m = LPS @ matrix @ LPS
    t = LPS @ offset
    ry = np.arcsin(-np.clip(m[2, 0], -1, 1))
    rx = np.arctan2(m[2, 1], m[2, 2])
    rz = np.arctan2(m[1, 0], m[0, 0])
    return np.r_[t, rx, ry, rz]


def _transform_matrix(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Matrix and offset of an ITK affine/rigid transform file (LPS): x -> M (x - c) + c + t."""
    import ants

    tx = ants.read_transform(path)
    params = np.asarray(tx.parameters, dtype=float)
    fixed = np.asarray(tx.fixed_parameters, dtype=float)
    matrix = params[:9].reshape(3, 3)
    translation = params[9:12]
    offset = translation + fixed - matrix @ fixed
    return matrix, offset


def motion_estimated(table: pd.DataFrame) -> bool:
    """Whether a motion table (``_motion.tsv``, n/a read as NaN) holds estimates: PET realigned
    by another tool that gave none has n/a throughout."""
    return not table[["trans_x", "rot_x"]].isna().all().all()


def framewise_displacement(params: np.ndarray, radius_mm: float = FD_RADIUS_MM) -> np.ndarray:
    """Power et al. 2012: sum of absolute frame-to-frame changes, rotations as arc length."""
    d = np.abs(np.diff(params, axis=0))
    return np.r_[0.0, d[:, :3].sum(axis=1) + radius_mm * d[:, 3:].sum(axis=1)]


def registration_shrink_factors(voxel_mm: tuple[float, ...]) -> tuple[int, int]:
    """The two levels of the frame registrations: grids of about 2 x and 1 x
    :data:`REGISTRATION_MM`: the frames are smoothed to 6 mm FWHM first, so a finer grid adds
    time, not accuracy (docs/validation.md)."""
    finest = max(1, round(REGISTRATION_MM / min(voxel_mm)))
    return 2 * finest, finest


def motion_correct(pet: str, metadata: dict, out_dir: str, ref_start_s: float = 120.0,
                   smooth_fwhm_mm: float = 6.0) -> tuple[str, str, str, list[str]]:
    """Realign the frames (``metadata``: :meth:`PETMetadata.as_record`). Returns the corrected 4D
    PET, the reference (time-weighted mean of the corrected frames: ``petref``), the
    ``_motion.tsv`` and the per-frame transform files (frame -> reference, ITK)."""
    from workflows.imaging.repeatable import seeded_ants
    ants = seeded_ants()

    out = Path(out_dir)
    timing = PETMetadata.from_record(metadata).timing
    image = ants.image_read(pet)
    frames = ants.ndimage_to_list(image)
    late = np.flatnonzero(timing.start_s >= ref_start_s)
    if late.size < 2:  # short scans: use the second half
        late = np.arange(timing.n_frames // 2, timing.n_frames)
    weights = timing.duration_s

    def weighted_mean(images, idx):
        total = sum(images[i].numpy() * weights[i] for i in idx) / weights[idx].sum()
        return frames[0].new_image_like(total.astype(np.float32))

    def smooth(img):
        return ants.smooth_image(img, smooth_fwhm_mm, sigma_in_physical_coordinates=True,
                                 FWHM=True)

    reference = smooth(weighted_mean(frames, late))
    shrink = registration_shrink_factors(image.spacing[:3])
    moving = {i: smooth(frames[i]) for i in late}
    transforms: list[str | None] = [None] * timing.n_frames
    for pass_ in range(2):
        for i in late:
            levels = (dict(aff_shrink_factors=shrink, aff_smoothing_sigmas=(1, 0),
                           aff_iterations=(200, 100)) if pass_ == 0 else
                      dict(aff_shrink_factors=shrink[1:], aff_smoothing_sigmas=(0,),
                           aff_iterations=(100,), initial_transform=transforms[i]))
            reg = ants.registration(fixed=reference, moving=moving[i], type_of_transform="Rigid",
                                    aff_metric="mattes", aff_random_sampling_rate=SAMPLING_RATE,
                                    outprefix=str(out / f"hmc_pass{pass_}_frame{i:03d}_"),
                                    **levels)
            transforms[i] = reg["fwdtransforms"][0]
        if pass_ == 0:
            realigned = [ants.apply_transforms(reference, frames[i], [transforms[i]])
                         if transforms[i] else frames[i] for i in range(timing.n_frames)]
            reference = smooth(weighted_mean(realigned, late))
    first = transforms[int(late[0])]
    transforms = [t or first for t in transforms]
    # cubic B-spline, as SPM's realignment and PETPrep resample: linear interpolation would
    # blur each frame by up to a quarter of a voxel's variance per axis (docs/validation.md)
    corrected = [ants.apply_transforms(frames[i], frames[i], [transforms[i]],
                                       interpolator="bSpline") for i in range(timing.n_frames)]
    hmc_path = str(out / "pet_hmc.nii.gz")
    ants.image_write(ants.list_to_ndimage(image, corrected), hmc_path)
    ref_data = sum(c.numpy() * w for c, w in zip(corrected, weights)) / weights.sum()
    petref_path = str(out / "petref.nii.gz")
    ants.image_write(frames[0].new_image_like(ref_data.astype(np.float32)), petref_path)

    # The registration maps reference points to frame points: that is the head's pose in the
    # frame relative to the reference.
    params = np.array([rigid_parameters(*_transform_matrix(t)) for t in transforms])
    table = pd.DataFrame(params, columns=["trans_x", "trans_y", "trans_z",
                                          "rot_x", "rot_y", "rot_z"])
    table["framewise_displacement"] = framewise_displacement(params)
    table["registered"] = [bool(i in set(late.tolist())) for i in range(timing.n_frames)]
    motion_path = str(out / "motion.tsv")
    table.to_csv(motion_path, sep="\t", index=False, float_format="%.6f")
    return hmc_path, petref_path, motion_path, list(transforms)
