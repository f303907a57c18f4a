"""PET to T1w coregistration: rigid, mutual information (ANTs)."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def coregister(petref: str, t1w_brain: str, out_dir: str) -> tuple[str, str]:
    """Rigid registration of the PET reference to the skull-stripped T1w (Mattes mutual
    information, ANTs). Returns the PET -> T1w transform (ITK) and the PET reference resampled
    on the T1w grid (for the report)."""
    from workflows.repeatable import seeded_ants
    ants = seeded_ants()

    out = Path(out_dir)
    fixed = ants.image_read(t1w_brain)
    moving = ants.image_read(petref)
    reg = ants.registration(fixed=fixed, moving=moving, type_of_transform="Rigid",
                            aff_metric="mattes", outprefix=str(out / "pet_to_t1w_"))
    warped = str(out / "petref_space-T1w.nii.gz")
    ants.image_write(reg["warpedmovout"], warped)
    return reg["fwdtransforms"][0], warped


def init_coreg_wf(*, omp_nthreads: int = 1, name: str = "coreg_wf"):
    """PET-to-T1w coregistration.

    Inputs: ``petref``, ``t1w_brain``. Outputs: ``pet2t1w`` (ITK transform), ``petref_t1w``.
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
    from workflows.coreg import coregister
    return coregister(petref, t1w_brain, os.getcwd())
