"""The stage that stands in for motion correction and coregistration when the PET was
preprocessed elsewhere (PETPrep): realigned frames in T1w space go on as they are."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

OUTPUTS = ("pet_hmc", "petref", "motion_tsv", "pet2t1w", "petref_t1w")


def init_preprocessed_wf(*, metadata: dict, source: str, confounds: str | None,
                         name: str = "preprocessed_wf") -> pe.Workflow:
    """PET preprocessed by ``source`` (:func:`workflows.imaging.preprocessed.preprocessed_inputs`).

    Parameters
    ----------
    metadata : the scan's :meth:`~workflows.kinetics.metadata.PETMetadata.as_record`.
    source : the tool and version that preprocessed it (for the methods text).
    confounds : the tool's table of head-motion estimates (None: not given).

    Inputs
    ------
    pet (realigned 4D PET in T1w space), t1w_brain.

    Outputs
    -------
    :data:`OUTPUTS`: those of the motion-correction and coregistration stages.
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        f"The PET frames as preprocessed by {source} (motion-corrected and resampled into "
        "the T1w's space) were used as they were: petbind did not realign or coregister them "
        + ("again; head motion is the one that tool estimated. " if confounds else
           "again; that tool gave no head-motion estimates. "))
    inputnode = pe.Node(niu.IdentityInterface(fields=["pet", "t1w_brain"]),
                        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(OUTPUTS)), name="outputnode")
    node = pe.Node(niu.Function(function=_preprocessed_node, output_names=list(OUTPUTS)),
                   name="preprocessed", mem_gb=2)
    node.inputs.metadata = metadata
    node.inputs.confounds = confounds or ""
    workflow.connect([
        (inputnode, node, [("pet", "pet"), ("t1w_brain", "t1w_brain")]),
        (node, outputnode, [(f, f) for f in OUTPUTS]),
    ])
    return workflow


def _preprocessed_node(pet, confounds, t1w_brain, metadata):
    import os
    from workflows.imaging.preprocessed import preprocessed_inputs
    return preprocessed_inputs(pet, confounds or None, t1w_brain, metadata, os.getcwd())
