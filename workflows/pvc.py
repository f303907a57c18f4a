"""The partial-volume stage: regional TACs corrected by the geometric transfer matrix, and their
regional fits."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.imaging.gtm import REFERENCE_GROWTH_MM
from workflows.imaging.voxel_pvc import MG_MIN_GM_FRACTION
from workflows.tacs import init_fit_node


# the methods text of each voxelwise correction
VOXELWISE_METHODS = {
    "rbv": "The frames were also corrected voxel by voxel by region-based voxelwise correction "
           "[@rbv] on these GTM values (each frame scaled by the synthetic image of the "
           "regional values over that image blurred at the frame's resolution), and the "
           "voxelwise models were fitted to them as well. ",
    "mg": "The frames' grey matter was also corrected voxel by voxel by the Mueller-Gaertner "
          "method [@mg] (white matter, CSF and the rest of the head taken uniform at their GTM "
          "values; voxels of grey matter whose blurred grey-matter fraction is at least "
          f"{MG_MIN_GM_FRACTION:g}), and the voxelwise models were fitted to them as well. "}


def init_pvc_wf(*, metadata: dict, psf_fwhm_mm: float, reference_region: str,
                resampled_elsewhere: bool = False, method: str = "gtm",
                name: str = "pvc_wf") -> pe.Workflow:
    """GTM partial-volume correction of the regional TACs (:mod:`workflows.imaging.gtm`), and
    regional SRTM on them; with ``method`` "rbv" or "mg" also the frames corrected voxel by
    voxel on that GTM (:mod:`workflows.imaging.voxel_pvc`), for the voxelwise models.

    Parameters
    ----------
    metadata : the scan's :meth:`~workflows.kinetics.metadata.PETMetadata.as_record`.
    psf_fwhm_mm : the scanner's resolution (FWHM, mm).
    reference_region : the tracer's reference region.
    resampled_elsewhere : the frames were realigned by another tool (PETPrep).

    Inputs
    ------
    petref, pet_hmc, motion_tsv, mni2t1w, pet2t1w, reference_mask (PET grid),
    brain_mask (T1w grid).

    Outputs
    -------
    tacs (TSV), kinpar (TSV), resolution_mm (the FWHM per axis the GTM used), pet_pvc (the
    corrected frames; None with "gtm").
    """
    voxelwise = None if method == "gtm" else method
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "Regional TACs were corrected for partial-volume effects by the geometric transfer "
        f"matrix method [@gtm], with a Gaussian PSF of {psf_fwhm_mm:g} mm FWHM widened for each "
        "frame by the cubic B-spline resampling of motion correction (the variance of the "
        "Gaussian that spills as much activity across an edge as resampling at sub-voxel "
        "fraction u does, averaged over the brain"
        + ("; at the poses the preprocessing tool estimated, or where it gave none, averaged "
           "over u" if resampled_elsewhere else "") + "), and with every "
        "Neuromorphometrics label, the brain mask's unlabelled voxels, the rest of the field "
        f"of view and the reference region's mask, grown by {REFERENCE_GROWTH_MM:g} mm within "
        "its atlas labels, as "
        "regions; they were fitted with SRTM as above. " + VOXELWISE_METHODS.get(method, ""))
    fields = ["petref", "pet_hmc", "motion_tsv", "mni2t1w", "pet2t1w", "reference_mask",
              "brain_mask"]
    inputnode = pe.Node(niu.IdentityInterface(fields=fields), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["tacs", "kinpar", "resolution_mm",
                                                       "pet_pvc"]), name="outputnode")
    labels = pe.Node(niu.Function(function=_labels_node, output_names=["atlas_fine"]),
                     name="atlas_fine", mem_gb=2)
    extract = pe.Node(niu.Function(function=_extract_gtm_node,
                                   output_names=["tacs", "resolution_mm", "pet_pvc"]),
                      name="extract_gtm", mem_gb=4 if voxelwise else 2)
    extract.inputs.metadata = metadata
    extract.inputs.psf_fwhm_mm = psf_fwhm_mm
    extract.inputs.reference_name = reference_region
    extract.inputs.voxelwise_method = voxelwise
    fit = init_fit_node(metadata=metadata, reference_region=reference_region, name="fit_gtm")
    workflow.connect([
        (inputnode, labels, [("petref", "petref"), ("mni2t1w", "mni2t1w"),
                             ("pet2t1w", "pet2t1w"), ("brain_mask", "brain_mask")]),
        (inputnode, extract, [("pet_hmc", "pet_hmc"), ("motion_tsv", "motion_tsv"),
                              ("reference_mask", "reference_mask")]),
        (labels, extract, [("atlas_fine", "atlas_fine")]),
        (extract, fit, [("tacs", "tacs_tsv")]),
        (extract, outputnode, [("tacs", "tacs"), ("resolution_mm", "resolution_mm"),
                               ("pet_pvc", "pet_pvc")]),
        (fit, outputnode, [("kinpar", "kinpar")]),
    ])
    return workflow


def _labels_node(petref, mni2t1w, pet2t1w, brain_mask):
    import os
    from workflows.imaging.gtm import atlas_on_fine_pet_grid
    return atlas_on_fine_pet_grid(petref, mni2t1w, pet2t1w, os.getcwd(), brain_mask)


def _extract_gtm_node(pet_hmc, metadata, motion_tsv, atlas_fine, reference_mask, psf_fwhm_mm,
                      reference_name, voxelwise_method):
    import os
    from workflows.imaging.gtm import extract_tacs_gtm
    return extract_tacs_gtm(pet_hmc, metadata, motion_tsv, atlas_fine, reference_mask,
                            psf_fwhm_mm, reference_name, os.getcwd(), voxelwise_method)
