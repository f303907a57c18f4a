"""Parametric maps to MNI152NLin2009cAsym at 2 mm in one interpolation (PET -> T1w rigid and
T1w -> MNI SyN composed), unsmoothed and smoothed (Gaussian, FWHM 8 mm by default)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from workflows.imaging.resolution import smooth_fwhm


def to_mni(pet_map: str, pet2t1w: str, t1w2mni: str, voxel_mm: float, fwhm_mm: float,
           out_dir: str, interpolator: str = "linear") -> tuple[str, str]:
    """Returns the map in MNI space and its smoothed version. ``interpolator``: "linear", or
    "bSpline" (cubic) for maps corrected for partial volume, whose sharp region edges linear
    interpolation blurs by about a voxel, undoing part of the correction (docs/validation.md).
    A B-spline spreads a NaN over the whole image: NaN voxels are interpolated as 0 and the
    output is NaN wherever linear interpolation would have touched one."""
    import ants

    from workflows.imaging.anat import mni_reference_image
    from workflows.imaging.chains import pet_to_mni

    out = Path(out_dir)
    fixed = ants.image_read(mni_reference_image(voxel_mm, out_dir))
    transforms, invert = pet_to_mni(pet2t1w, t1w2mni)
    moving = ants.image_read(pet_map)
    missing = None
    if interpolator != "linear":
        values = moving.numpy()
        missing = ~np.isfinite(values)
        moving = moving.new_image_like(np.where(missing, 0.0, values).astype(np.float32))
    warped = ants.apply_transforms(fixed, moving, transforms, interpolator=interpolator,
                                   whichtoinvert=invert)
    if missing is not None and missing.any():
        touched = ants.apply_transforms(fixed, moving.new_image_like(
            missing.astype(np.float32)), transforms, interpolator="linear",
            whichtoinvert=invert).numpy() > 0
        warped = warped.new_image_like(np.where(touched, np.nan, warped.numpy())
                                       .astype(np.float32))
    name = Path(pet_map).name.replace(".nii.gz", "")
    path = str(out / f"{name}_space-MNI.nii.gz")
    ants.image_write(warped, path)
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    smoothed = smooth_fwhm(data, fwhm_mm, voxel_mm)
    sm_path = str(out / f"{name}_space-MNI_desc-sm.nii.gz")
    nib.save(nib.Nifti1Image(smoothed.astype(np.float32), img.affine), sm_path)
    return path, sm_path


def maps_to_mni(pet_maps: list[str], pet2t1w: str, t1w2mni: str, voxel_mm: float,
                fwhm_mm: float, out_dir: str, interpolator: str = "linear"
                ) -> tuple[list[str], list[str]]:
    """:func:`to_mni` for each map: the MNI maps and their smoothed versions, in order."""
    pairs = [to_mni(m, pet2t1w, t1w2mni, voxel_mm, fwhm_mm, out_dir, interpolator)
             for m in pet_maps]
    return [p for p, _ in pairs], [s for _, s in pairs]
