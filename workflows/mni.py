"""The MNI stage: parametric maps to MNI152NLin2009cAsym, unsmoothed and smoothed."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def init_mni_wf(*, voxel_mm: float = 2.0, fwhm_mm: float = 8.0, corrected: bool = False,
                name: str = "mni_wf") -> pe.Workflow:
    """Maps to MNI (:func:`workflows.imaging.mni.maps_to_mni`); ``corrected``: maps corrected
    for partial volume, resampled by cubic B-spline.

    Inputs
    ------
    pet_maps (list), pet2t1w, t1w2mni.

    Outputs
    -------
    mni, mni_smoothed (lists, in the order of ``pet_maps``).
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        f"Parametric maps were resampled to MNI152NLin2009cAsym at {voxel_mm:g} mm in a single "
        f"interpolation composing the coregistration and normalisation transforms, and smoothed "
        f"with a Gaussian kernel of {fwhm_mm:g} mm FWHM. ") if not corrected else (
        "The partial-volume-corrected maps were resampled the same way by cubic B-spline "
        "interpolation, which keeps their region edges sharper than linear interpolation. ")
    inputnode = pe.Node(niu.IdentityInterface(fields=["pet_maps", "pet2t1w", "t1w2mni"]),
                        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["mni", "mni_smoothed"]),
                         name="outputnode")
    node = pe.Node(niu.Function(function=_mni_node, output_names=["mni", "mni_smoothed"]),
                   name="to_mni", mem_gb=1)
    node.inputs.voxel_mm = voxel_mm
    node.inputs.fwhm_mm = fwhm_mm
    node.inputs.interpolator = "bSpline" if corrected else "linear"
    workflow.connect([
        (inputnode, node, [("pet_maps", "pet_maps"), ("pet2t1w", "pet2t1w"),
                           ("t1w2mni", "t1w2mni")]),
        (node, outputnode, [("mni", "mni"), ("mni_smoothed", "mni_smoothed")]),
    ])
    return workflow


def _mni_node(pet_maps, pet2t1w, t1w2mni, voxel_mm, fwhm_mm, interpolator):
    import os
    from workflows.imaging.mni import maps_to_mni
    return maps_to_mni(pet_maps, pet2t1w, t1w2mni, voxel_mm, fwhm_mm, os.getcwd(),
                       interpolator)
