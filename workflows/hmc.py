"""The head-motion correction stage: rigid realignment of the PET frames."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe


def init_hmc_wf(*, metadata: dict, omp_nthreads: int = 1, name: str = "hmc_wf") -> pe.Workflow:
    """Head-motion correction (:func:`workflows.imaging.motion.motion_correct`).

    Parameters
    ----------
    metadata : the scan's :meth:`~workflows.kinetics.metadata.PETMetadata.as_record`.
    omp_nthreads : threads of the registration node.

    Inputs
    ------
    pet : the 4D PET image.

    Outputs
    -------
    pet_hmc (realigned 4D PET), petref (time-weighted mean), motion_tsv.
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "PET frames were realigned (rigid, ANTs, mutual information, two passes) to the "
        "time-weighted mean of the frames after 120 s, smoothed 6 mm; earlier low-count frames "
        "took the transform of the first registered frame. The frames were resampled once, by "
        "cubic B-spline interpolation. Framewise displacement [@power2012] "
        "was computed for a head radius of 50 mm. ")
    inputnode = pe.Node(niu.IdentityInterface(fields=["pet"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["pet_hmc", "petref", "motion_tsv"]),
                         name="outputnode")
    hmc = pe.Node(niu.Function(function=_hmc_node,
                               output_names=["pet_hmc", "petref", "motion_tsv", "transforms"]),
                  name="realign", mem_gb=2, n_procs=omp_nthreads)
    hmc.inputs.metadata = metadata
    workflow.connect([
        (inputnode, hmc, [("pet", "pet")]),
        (hmc, outputnode, [("pet_hmc", "pet_hmc"), ("petref", "petref"),
                           ("motion_tsv", "motion_tsv")]),
    ])
    return workflow


def _hmc_node(pet, metadata):
    import os
    from workflows.imaging.motion import motion_correct
    return motion_correct(pet, metadata, os.getcwd())
