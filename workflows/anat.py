"""The anatomical stage: T1w bias correction, brain extraction, segmentation and normalisation."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.imaging.anat import HEAD_METRIC_MARGIN_MM, REGISTRATION_MM, Normalisation


def init_anat_wf(*, omp_nthreads: int = 1, seed: int = 0, skull_strip: str = "auto",
                 transforms: dict | None = None, name: str = "anat_wf") -> pe.Workflow:
    """T1w preprocessing (:mod:`workflows.imaging.anat`).

    Parameters
    ----------
    omp_nthreads : threads of each ANTs node.
    seed : seed of ROBEX.
    skull_strip : ``auto``, ``force`` or ``skip``, as :func:`bias_correct_and_extract` takes.
    transforms : another tool's normalisation of this T1w, used instead of petbind's SyN:
        ``t1w2mni`` and ``mni2t1w`` (ITK composite files, as
        :class:`~workflows.imaging.anat.Normalisation` names them) and ``source`` (the tool).

    Inputs
    ------
    t1w : the raw T1w.

    Outputs
    -------
    t1w_preproc (bias corrected), t1w_brain, brain_mask, gm_prob, wm_prob, csf_prob, dseg,
    t1w2mni, mni2t1w, mni_affine (:class:`~workflows.imaging.anat.Normalisation`), t1w_mni.
    """
    workflow = pe.Workflow(name=name)
    refined = ("with ROBEX [@robex], the mask then refined to the template's brain mask "
               "brought back by the normalisation below")
    extraction = {"auto": f"{refined} (a T1w brain-extracted already kept its non-zero voxels "
                          "as the brain mask)",
                  "force": refined,
                  "skip": "by taking its non-zero voxels as the brain (it was brain-extracted "
                          "already)"}[skull_strip]
    normalisation = (
        ", all with ANTs: an affine registration of the extracted brain, then SyN [@syn] of the "
        f"whole T1w with the similarity (local cross-correlation, radius 2 voxels, at "
        f"{REGISTRATION_MM:g} mm or the T1w's voxel size if coarser) measured on the template's "
        f"brain and {HEAD_METRIC_MARGIN_MM:g} mm around it" if transforms is None else
        f" through the transforms {transforms['source']} estimated (its T1w <-> "
        "MNI152NLin2009cAsym composites, applied with ANTs; petbind's affine registration of "
        "the extracted brain served the quality control only)")
    workflow.__desc__ = (
        "The T1w image was corrected for intensity non-uniformity with N4 [@n4], "
        f"skull-stripped {extraction}, segmented into grey matter, white matter and CSF with "
        "Atropos [@atropos] (three classes, Otsu-initialised, MRF weight 0.2) and normalised "
        f"to the MNI152NLin2009cAsym template [@mni2009]{normalisation}. ")
    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=[
        "t1w_preproc", "t1w_brain", "brain_mask", "gm_prob", "wm_prob", "csf_prob", "dseg",
        "t1w2mni", "mni2t1w", "mni_affine", "t1w_mni"]), name="outputnode")
    skullstrip = pe.Node(niu.Function(function=_skullstrip_node,
                                      output_names=["t1w_preproc", "t1w_brain", "brain_mask",
                                                    "refine_mask"]),
                         name="skullstrip", mem_gb=2, n_procs=omp_nthreads)
    skullstrip.inputs.seed = seed
    skullstrip.inputs.mode = skull_strip
    seg = pe.Node(niu.Function(function=_segment_node,
                               output_names=["gm_prob", "wm_prob", "csf_prob", "dseg"]),
                  name="segment", mem_gb=1.5, n_procs=omp_nthreads)
    given = transforms is not None
    norm = pe.Node(niu.Function(function=_given_normalise_node if given else _normalise_node,
                                output_names=list(Normalisation._fields)),
                   name="normalise_given" if given else "normalise", mem_gb=2,
                   n_procs=omp_nthreads)
    if given:
        norm.inputs.t1w2mni = transforms["t1w2mni"]
        norm.inputs.mni2t1w = transforms["mni2t1w"]
    workflow.connect([
        (inputnode, skullstrip, [("t1w", "t1w")]),
        (skullstrip, norm, [("t1w_preproc", "t1w"), ("brain_mask", "brain_mask"),
                            ("refine_mask", "refine_mask")]),
        (norm, seg, [("t1w_brain", "t1w_brain"), ("brain_mask", "brain_mask")]),
        (skullstrip, outputnode, [("t1w_preproc", "t1w_preproc")]),
        (norm, outputnode, [("t1w_brain", "t1w_brain"), ("brain_mask", "brain_mask")]),
        (seg, outputnode, [("gm_prob", "gm_prob"), ("wm_prob", "wm_prob"),
                           ("csf_prob", "csf_prob"), ("dseg", "dseg")]),
        (norm, outputnode, [(f, f) for f in ("t1w2mni", "mni2t1w", "mni_affine", "t1w_mni")]),
    ])
    return workflow


# Nipype Function nodes run the source of these wrappers in the node's folder.
def _skullstrip_node(t1w, seed, mode):
    import os

    import nibabel as nib

    from workflows.imaging.anat import bias_correct_and_extract, brain_is_given
    given = brain_is_given(nib.load(t1w).get_fdata(), mode)
    return (*bias_correct_and_extract(t1w, os.getcwd(), seed, mode), not given)


def _segment_node(t1w_brain, brain_mask):
    import os
    from workflows.imaging.anat import segment
    return segment(t1w_brain, brain_mask, os.getcwd())


def _normalise_node(t1w, brain_mask, refine_mask):
    import os
    from workflows.imaging.anat import normalise
    return tuple(normalise(t1w, brain_mask, os.getcwd(), refine_mask))


def _given_normalise_node(t1w, brain_mask, refine_mask, t1w2mni, mni2t1w):
    import os
    from workflows.imaging.anat import normalise_with
    return tuple(normalise_with(t1w, brain_mask, os.getcwd(), refine_mask, t1w2mni, mni2t1w))
