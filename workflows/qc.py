"""The quality-control stage: each scan's QC metrics against their thresholds."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

QC_INPUTS = ("brain_mask", "t1w_mni", "mni_affine", "petref_t1w", "reference_mask", "kinpar",
             "fit_infos", "motion_tsv")


def init_qc_wf(*, thresholds: dict[str, list] | None = None, name: str = "qc_wf"
               ) -> pe.Workflow:
    """QC metrics (:func:`workflows.imaging.qc.scan_qc`).

    Parameters
    ----------
    thresholds : metric -> [lower, upper] overriding :data:`workflows.imaging.qc.THRESHOLDS`.

    Inputs
    ------
    brain_mask, t1w_mni, mni_affine (anatomy: the normalisation's affine part), petref_t1w
    (coregistration), reference_mask, kinpar, fit_infos (every voxelwise model's fit_info),
    motion_tsv.

    Outputs
    -------
    qc (TSV: metric, value, lower, upper, flagged, description).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=list(QC_INPUTS)), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["qc"]), name="outputnode")
    node = pe.Node(niu.Function(function=_qc_node, output_names=["qc"]), name="metrics",
                   mem_gb=1)
    node.inputs.thresholds = dict(thresholds or {})
    workflow.connect([
        (inputnode, node, [(f, f) for f in QC_INPUTS]),
        (node, outputnode, [("qc", "qc")]),
    ])
    return workflow


def _qc_node(brain_mask, t1w_mni, mni_affine, petref_t1w, reference_mask, kinpar, fit_infos,
             motion_tsv, thresholds):
    import os
    from workflows.imaging.qc import scan_qc
    return scan_qc(brain_mask, t1w_mni, mni_affine, petref_t1w, reference_mask, kinpar, fit_infos,
                   motion_tsv, thresholds, os.getcwd())
