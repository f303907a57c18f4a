"""The coregistration stage: the PET reference to the T1w brain."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def init_coreg_wf(*, omp_nthreads: int = 1, name: str = "coreg_wf") -> pe.Workflow:
    """PET-to-T1w coregistration (:func:`workflows.imaging.coreg.coregister`).

    Inputs
    ------
    petref, t1w_brain.

    Outputs
    -------
    pet2t1w (ITK transform), petref_t1w (the PET reference on the T1w grid, for the report).
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = ("The PET reference was coregistered to the T1w brain by a rigid "
                         "transform maximising mutual information (ANTs). ")
    inputnode = pe.Node(niu.IdentityInterface(fields=["petref", "t1w_brain"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["pet2t1w", "petref_t1w"]),
                         name="outputnode")
    node = pe.Node(niu.Function(function=_coreg_node, output_names=["pet2t1w", "petref_t1w"]),
                   name="coregister", mem_gb=1, n_procs=omp_nthreads)
    workflow.connect([
        (inputnode, node, [("petref", "petref"), ("t1w_brain", "t1w_brain")]),
        (node, outputnode, [("pet2t1w", "pet2t1w"), ("petref_t1w", "petref_t1w")]),
    ])
    return workflow


def _coreg_node(petref, t1w_brain):
    import os
    from workflows.imaging.coreg import coregister
    return coregister(petref, t1w_brain, os.getcwd())
