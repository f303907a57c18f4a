"""Parametric maps to MNI152NLin2009cAsym at 2 mm in one interpolation (PET -> T1w rigid and
T1w -> MNI SyN composed), unsmoothed and smoothed (Gaussian, FWHM 8 mm by default)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.resolution import smooth_fwhm


def to_mni(pet_map: str, pet2t1w: str, t1w2mni: list[str], voxel_mm: float, fwhm_mm: float,
           out_dir: str) -> tuple[str, str]:
    """Returns the map in MNI space and its smoothed version."""
    import ants

    from workflows.anat import mni_reference_image

    out = Path(out_dir)
    fixed = ants.image_read(mni_reference_image(voxel_mm, out_dir))
    # an MNI point goes through the SyN (affine, then warp) to T1w, then the rigid to PET:
    # the transform applied last to the point comes first in the list
    warped = ants.apply_transforms(fixed, ants.image_read(pet_map), [pet2t1w] + list(t1w2mni),
                                   interpolator="linear", whichtoinvert=[False, False, False])
    name = Path(pet_map).name.replace(".nii.gz", "")
    path = str(out / f"{name}_space-MNI.nii.gz")
    ants.image_write(warped, path)
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float32)
    smoothed = smooth_fwhm(data, fwhm_mm, voxel_mm)
    sm_path = str(out / f"{name}_space-MNI_desc-sm.nii.gz")
    nib.save(nib.Nifti1Image(smoothed.astype(np.float32), img.affine), sm_path)
    return path, sm_path


def init_mni_wf(*, voxel_mm: float = 2.0, fwhm_mm: float = 8.0, name: str = "mni_wf"):
    """Maps to MNI.

    Inputs: ``pet_map``, ``pet2t1w``, ``t1w2mni``. Outputs: ``mni``, ``mni_smoothed``.
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        f"Parametric maps were resampled to MNI152NLin2009cAsym at {voxel_mm:g} mm in a single "
        f"interpolation composing the coregistration and normalisation transforms, and smoothed "
        f"with a Gaussian kernel of {fwhm_mm:g} mm FWHM. ")
    inputnode = pe.Node(niu.IdentityInterface(fields=["pet_map", "pet2t1w", "t1w2mni"]),
                        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["mni", "mni_smoothed"]),
                         name="outputnode")
    node = pe.Node(niu.Function(function=_mni_node, output_names=["mni", "mni_smoothed"]),
                   name="to_mni", mem_gb=1)
    node.inputs.voxel_mm = voxel_mm
    node.inputs.fwhm_mm = fwhm_mm
    workflow.connect([
        (inputnode, node, [("pet_map", "pet_map"), ("pet2t1w", "pet2t1w"),
                           ("t1w2mni", "t1w2mni")]),
        (node, outputnode, [("mni", "mni"), ("mni_smoothed", "mni_smoothed")]),
    ])
    return workflow


def _mni_node(pet_map, pet2t1w, t1w2mni, voxel_mm, fwhm_mm):
    import os
    from workflows.mni import to_mni
    return to_mni(pet_map, pet2t1w, t1w2mni, voxel_mm, fwhm_mm, os.getcwd())
