"""The processing of one PET scan: motion correction, coregistration, masks and the reference
region, regional TACs and SRTM, voxelwise models, maps to MNI, and (optionally) partial-volume
corrected regional TACs. The app (:mod:`bids_app.participant`) connects its outputs to the
derivative writers and the report."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.coreg import init_coreg_wf
from workflows.hmc import init_hmc_wf
from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import get_model
from workflows.mni import init_mni_wf
from workflows.preprocessed import init_preprocessed_wf
from workflows.pvc import init_pvc_wf
from workflows.qc import init_qc_wf
from workflows.refregion import init_refregion_wf
from workflows.tacs import init_tacs_wf
from workflows.voxelwise import init_voxelwise_wf

ANAT_INPUTS = ("t1w_brain", "brain_mask", "gm_prob", "t1w2mni", "mni2t1w", "mni_affine",
               "t1w_mni")
SCAN_OUTPUTS = ("petref", "motion_tsv", "petref_t1w", "reference_mask", "brain_mask_pet",
                "atlas_pet", "tacs", "kinpar", "qc")
PVC_OUTPUTS = ("pvc_tacs", "pvc_kinpar", "pvc_resolution_mm")


def model_key(model: str, pvc: bool = False) -> str:
    """A model's name as nipype field names allow (``srtm-bfm`` -> ``srtm_bfm``); with
    ``pvc``, that of its fit to the frames corrected voxel by voxel (``pvc_srtm_bfm``)."""
    return ("pvc_" if pvc else "") + model.replace("-", "_")


def model_outputs(model: str, pvc: bool = False) -> tuple[str, ...]:
    """The outputnode fields of one voxelwise model: maps in PET space, in MNI space, in MNI
    space smoothed (lists in the model's ``maps`` order), the fit's settings and QC, and the
    standard-error maps in PET space; with ``pvc``, those of its fit to the frames corrected
    voxel by voxel."""
    key = model_key(model, pvc)
    return (f"{key}_maps", f"{key}_mni", f"{key}_mni_smoothed", f"{key}_fit_info",
            f"{key}_se_maps")


def pvc_outputs(models: list[str], method: str) -> list[str]:
    """The outputnode fields of partial-volume correction: :data:`PVC_OUTPUTS`, and with a
    voxelwise ``method`` each model's :func:`model_outputs` on the corrected frames."""
    voxelwise = [f for m in models for f in model_outputs(m, pvc=True)] if method != "gtm" \
        else []
    return [*PVC_OUTPUTS, *voxelwise]


def init_pet_wf(*, metadata: dict, reference_region: str, models: list[str],
                k2a_range: tuple[float, float], n_bases: int, smoothing_fwhm_mm: float,
                mni_voxel_mm: float, pvc_psf_fwhm_mm: float | None, omp_nthreads: int,
                name: str, qc_thresholds: dict[str, list] | None = None,
                preprocessed: dict | None = None, pvc_method: str = "gtm") -> pe.Workflow:
    """One PET scan, from the raw image to its products.

    Parameters
    ----------
    metadata : the scan's :meth:`~workflows.kinetics.metadata.PETMetadata.as_record`.
    reference_region : the tracer's reference region.
    models : the voxelwise models to fit (names in :data:`workflows.kinetics.models.MODELS`).
    k2a_range, n_bases : theta3 range (1/min, decay-corrected data) and number of bases.
    smoothing_fwhm_mm, mni_voxel_mm : the MNI maps' smoothing and grid.
    pvc_psf_fwhm_mm : the scanner's PSF for GTM correction of regional TACs (None: none).
    pvc_method : "gtm" (regional only), or "rbv" or "mg": the frames also corrected voxel by
        voxel, and every voxelwise model fitted to them as well.
    qc_thresholds : ranges of the QC metrics that differ from the defaults.
    preprocessed : for PET realigned and in T1w space already (PETPrep), ``source`` (tool and
        version) and ``confounds`` (its motion table or None): that image stands in for
        motion correction and coregistration (:mod:`workflows.preprocessed`).

    Inputs
    ------
    pet, and from the anatomical workflow :data:`ANAT_INPUTS`.

    Outputs
    -------
    :data:`SCAN_OUTPUTS`, :func:`model_outputs` of each model, and :func:`pvc_outputs` with
    PVC.
    """
    fields = list(SCAN_OUTPUTS) + [f for m in models for f in model_outputs(m)]
    fields += pvc_outputs(models, pvc_method) if pvc_psf_fwhm_mm else []
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["pet", *ANAT_INPUTS]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=fields), name="outputnode")
    if preprocessed:        # one stage gives what motion correction and coregistration would
        hmc = coreg = init_preprocessed_wf(metadata=metadata, **preprocessed)
        workflow.connect(inputnode, "pet", hmc, "inputnode.pet")
    else:
        hmc = init_hmc_wf(metadata=metadata, omp_nthreads=omp_nthreads)
        coreg = init_coreg_wf(omp_nthreads=omp_nthreads)
        workflow.connect([(inputnode, hmc, [("pet", "inputnode.pet")]),
                          (hmc, coreg, [("outputnode.petref", "inputnode.petref")])])
    masks = init_refregion_wf(metadata=metadata, reference_region=reference_region)
    tacs = init_tacs_wf(metadata=metadata, reference_region=reference_region)
    workflow.connect([
        (inputnode, coreg, [("t1w_brain", "inputnode.t1w_brain")]),
        (inputnode, masks, [(f, f"inputnode.{f}") for f in ("brain_mask", "gm_prob",
                                                              "mni2t1w")]),
        (hmc, masks, [("outputnode.petref", "inputnode.petref"),
                      ("outputnode.pet_hmc", "inputnode.pet_hmc")]),
        (coreg, masks, [("outputnode.pet2t1w", "inputnode.pet2t1w")]),
        (hmc, tacs, [("outputnode.pet_hmc", "inputnode.pet_hmc")]),
        (masks, tacs, [("outputnode.atlas_pet", "inputnode.atlas_pet"),
                       ("outputnode.reference_mask", "inputnode.reference_mask")]),
        (hmc, outputnode, [("outputnode.petref", "petref"),
                           ("outputnode.motion_tsv", "motion_tsv")]),
        (coreg, outputnode, [("outputnode.petref_t1w", "petref_t1w")]),
        (masks, outputnode, [(f"outputnode.{f}", f) for f in ("reference_mask",
                                                               "brain_mask_pet", "atlas_pet")]),
        (tacs, outputnode, [("outputnode.tacs", "tacs"), ("outputnode.kinpar", "kinpar")]),
    ])
    settings = ModelSettings(theta3_range_per_min=tuple(k2a_range), n_bases=n_bases)
    added = [_add_model(workflow, model, metadata, settings, smoothing_fwhm_mm, mni_voxel_mm,
                        (inputnode, outputnode, hmc, coreg, masks, tacs),
                        (hmc, "outputnode.pet_hmc")) for model in models]
    _add_qc(workflow, qc_thresholds, (inputnode, outputnode, hmc, coreg, masks, tacs,
                                      [voxelwise for voxelwise, _ in added]))
    stages = ([hmc] if hmc is coreg else [hmc, coreg]) + [masks, tacs]
    stages += [fit for fit, _ in added] + [added[0][1]]
    if pvc_psf_fwhm_mm:
        pvc = _add_pvc(workflow, metadata, pvc_psf_fwhm_mm, reference_region, pvc_method,
                       (inputnode, outputnode, hmc, coreg, masks))
        stages.append(pvc)
        if pvc_method != "gtm":        # the voxelwise models again, on the corrected frames
            corrected = [_add_model(workflow, model, metadata, settings, smoothing_fwhm_mm,
                                    mni_voxel_mm, (inputnode, outputnode, hmc, coreg, masks, pvc),
                                    (pvc, "outputnode.pet_pvc"), corrected=True)
                         for model in models]
            stages.append(corrected[0][1])
    # the methods paragraph: each stage describes itself with its settings
    workflow.__desc__ = "".join(stage.__desc__ for stage in stages)
    return workflow


def _add_model(workflow: pe.Workflow, model: str, metadata: dict, settings: ModelSettings,
               smoothing_fwhm_mm: float, mni_voxel_mm: float, nodes: tuple,
               frames: tuple[pe.Workflow, str], corrected: bool = False
               ) -> tuple[pe.Workflow, pe.Workflow]:
    """The voxelwise fit of one model to ``frames`` (a stage and its output) and its maps' way
    to MNI (both returned); ``corrected``: the frames corrected voxel by voxel, whose regional
    fits (``tacs`` in ``nodes``: the PVC stage) are GTM-corrected too."""
    inputnode, outputnode, hmc, coreg, masks, tacs = nodes
    key = model_key(model, corrected)
    maps, mni, mni_smoothed, fit_info, se_maps = model_outputs(model, corrected)
    voxelwise = init_voxelwise_wf(metadata=metadata, model=model, settings=settings,
                                  name=f"voxelwise_{key}_wf")
    to_mni = init_mni_wf(voxel_mm=mni_voxel_mm, fwhm_mm=smoothing_fwhm_mm, corrected=corrected,
                         name=f"mni_{key}_wf")
    workflow.connect([
        (frames[0], voxelwise, [(frames[1], "inputnode.pet_hmc")]),
        (masks, voxelwise, [("outputnode.reference_mask", "inputnode.reference_mask"),
                            ("outputnode.brain_mask_pet", "inputnode.brain_mask")]),
        (voxelwise, to_mni, [("outputnode.maps", "inputnode.pet_maps")]),
        (coreg, to_mni, [("outputnode.pet2t1w", "inputnode.pet2t1w")]),
        (inputnode, to_mni, [("t1w2mni", "inputnode.t1w2mni")]),
        (voxelwise, outputnode, [("outputnode.maps", maps), ("outputnode.fit_info", fit_info),
                                 ("outputnode.se_maps", se_maps)]),
        (to_mni, outputnode, [("outputnode.mni", mni), ("outputnode.mni_smoothed",
                                                         mni_smoothed)]),
    ])
    if "k2prime_per_min" in get_model(model).needs:    # k2' from the regional SRTM fits
        workflow.connect(tacs, "outputnode.kinpar", voxelwise, "inputnode.kinpar")
    return voxelwise, to_mni


def _add_qc(workflow: pe.Workflow, thresholds: dict | None, nodes: tuple) -> None:
    """The QC metrics of the scan (its anatomy, coregistration, reference, fits of every
    voxelwise model, motion)."""
    inputnode, outputnode, hmc, coreg, masks, tacs, voxelwise = nodes
    qc = init_qc_wf(thresholds=thresholds)
    fit_infos = pe.Node(niu.Merge(len(voxelwise)), name="fit_infos",
                        run_without_submitting=True)
    for i, model_wf in enumerate(voxelwise, start=1):
        workflow.connect(model_wf, "outputnode.fit_info", fit_infos, f"in{i}")
    workflow.connect([
        (inputnode, qc, [(f, f"inputnode.{f}") for f in ("brain_mask", "t1w_mni",
                                                              "mni_affine")]),
        (hmc, qc, [("outputnode.motion_tsv", "inputnode.motion_tsv")]),
        (coreg, qc, [("outputnode.petref_t1w", "inputnode.petref_t1w")]),
        (masks, qc, [("outputnode.reference_mask", "inputnode.reference_mask")]),
        (tacs, qc, [("outputnode.kinpar", "inputnode.kinpar")]),
        (fit_infos, qc, [("out", "inputnode.fit_infos")]),
        (qc, outputnode, [("outputnode.qc", "qc")]),
    ])


def _add_pvc(workflow: pe.Workflow, metadata: dict, psf_fwhm_mm: float, reference_region: str,
             method: str, nodes: tuple) -> pe.Workflow:
    """GTM-corrected regional TACs and their fits, and with ``method`` "rbv" or "mg" the
    frames corrected voxel by voxel (the stage returned)."""
    inputnode, outputnode, hmc, coreg, masks = nodes
    pvc = init_pvc_wf(metadata=metadata, psf_fwhm_mm=psf_fwhm_mm,
                      reference_region=reference_region, resampled_elsewhere=hmc is coreg,
                      method=method)
    workflow.connect([
        (inputnode, pvc, [("mni2t1w", "inputnode.mni2t1w"),
                          ("brain_mask", "inputnode.brain_mask")]),
        (hmc, pvc, [(f"outputnode.{f}", f"inputnode.{f}") for f in ("petref", "pet_hmc",
                                                                     "motion_tsv")]),
        (coreg, pvc, [("outputnode.pet2t1w", "inputnode.pet2t1w")]),
        (masks, pvc, [("outputnode.reference_mask", "inputnode.reference_mask")]),
        (pvc, outputnode, [("outputnode.tacs", "pvc_tacs"), ("outputnode.kinpar", "pvc_kinpar"),
                           ("outputnode.resolution_mm", "pvc_resolution_mm")]),
    ])
    return pvc
