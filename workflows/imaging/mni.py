"""Parametric maps to MNI152NLin2009cAsym at 2 mm in one interpolation (PET -> T1w rigid and
T1w -> MNI SyN composed), unsmoothed and smoothed (Gaussian, FWHM 8 mm by default)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from workflows.imaging.resolution import smooth_fwhm


def to_mni(pet_map: str, pet2t1w: str, t1w2mni: str, voxel_mm: float, fwhm_mm: float,
           out_dir: str) -> tuple[str, str]:
    """Returns the map in MNI space and its smoothed version."""
    import ants

    from workflows.imaging.anat import mni_reference_image
    from workflows.imaging.chains import pet_to_mni

    out = Path(out_dir)
    fixed = ants.image_read(mni_reference_image(voxel_mm, out_dir))
    transforms, invert = pet_to_mni(pet2t1w, t1w2mni)
    warped = ants.apply_transforms(fixed, ants.image_read(pet_map), transforms,
                                   interpolator="linear", whichtoinvert=invert)
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
                fwhm_mm: float, out_dir: str) -> tuple[list[str], list[str]]:
    """:func:`to_mni` for each map: the MNI maps and their smoothed versions, in order."""
    pairs = [to_mni(m, pet2t1w, t1w2mni, voxel_mm, fwhm_mm, out_dir) for m in pet_maps]
    return [p for p, _ in pairs], [s for _, s in pairs]
