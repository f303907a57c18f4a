"""The masks stage: atlas labels, brain mask and the tracer's reference region in PET space."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

OUTPUTS = ("atlas_pet", "brain_mask_pet", "gm_pet", "reference_mask")


def init_refregion_wf(*, metadata: dict, reference_region: str,
                      name: str = "refregion_wf") -> pe.Workflow:
    """Masks in PET space (:func:`workflows.imaging.masks.masks_in_pet_space`).

    Parameters
    ----------
    metadata : the scan's :meth:`~workflows.kinetics.metadata.PETMetadata.as_record`.
    reference_region : the tracer's reference region (a region group of the atlas).

    Inputs
    ------
    petref, pet_hmc, brain_mask, gm_prob (T1w grid), mni2t1w, pet2t1w.

    Outputs
    -------
    atlas_pet, brain_mask_pet, gm_pet, reference_mask (PET grid).
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        f"The reference region ({reference_region}) was defined in MNI space from the "
        "Neuromorphometrics atlas with Magia's geometric restrictions [@magia], warped to PET "
        "space, restricted to grey matter (probability > 0.5) and trimmed to the half-maximum "
        "window around the mode of its PET values in the second half of the scan. ")
    fields = ["petref", "pet_hmc", "brain_mask", "gm_prob", "mni2t1w", "pet2t1w"]
    inputnode = pe.Node(niu.IdentityInterface(fields=fields), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(OUTPUTS)), name="outputnode")
    node = pe.Node(niu.Function(function=_masks_node, output_names=list(OUTPUTS)), name="masks",
                   mem_gb=1)
    node.inputs.metadata = metadata
    node.inputs.reference_region = reference_region
    workflow.connect([
        (inputnode, node, [(f, f) for f in fields]),
        (node, outputnode, [(f, f) for f in OUTPUTS]),
    ])
    return workflow


def _masks_node(petref, pet_hmc, metadata, brain_mask, gm_prob, mni2t1w, pet2t1w,
                reference_region):
    import os
    from workflows.imaging.masks import masks_in_pet_space
    return masks_in_pet_space(petref, pet_hmc, metadata, brain_mask, gm_prob, mni2t1w, pet2t1w,
                              reference_region, os.getcwd())
