"""The participant-level graph: for each T1w the anatomical workflow, for each PET scan motion
correction, coregistration, masks and reference region, TACs and regional SRTM, voxelwise SRTM,
maps to MNI, then the derivatives and the report, written last."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.anat import init_anat_wf
from workflows.coreg import init_coreg_wf
from workflows.hmc import init_hmc_wf
from workflows.mni import init_mni_wf
from workflows.pvc import init_pvc_wf
from workflows.refregion import init_refregion_wf
from workflows.tacs import init_tacs_wf
from workflows.voxelwise import init_voxelwise_wf

MAP_NAMES = ("bpnd", "r1", "k2")


def init_petbind_wf(scans, settings, name: str = "petbind_wf"):
    """All participants' scans in one graph (so any nipype plugin can schedule them)."""
    workflow = pe.Workflow(name=name, base_dir=str(settings.work_dir))
    anat_wfs = {}
    for scan in scans:
        key = str(scan.t1w)
        if key not in anat_wfs:
            anat_name = "anat_" + scan.t1w.name.split(".")[0].replace("-", "").replace(".", "_")
            anat_wfs[key] = init_anat_wf(omp_nthreads=settings.omp_nthreads, seed=settings.seed,
                                         skull_strip=settings.skull_strip_t1w, name=anat_name)
            anat_wfs[key].inputs.inputnode.t1w = str(scan.t1w)
            anat_sink = pe.Node(niu.Function(function=_anat_sink_node, output_names=["out"]),
                                name=f"{anat_name}_sink")
            anat_sink.inputs.output_dir = str(settings.output_dir)
            anat_sink.inputs.subject = scan.subject
            anat_sink.inputs.session = scan.session if f"ses-{scan.session}" in str(
                scan.t1w) else None
            workflow.connect([(anat_wfs[key], anat_sink, [
                (f"outputnode.{f}", f) for f in ("t1w_preproc", "brain_mask", "dseg", "gm_prob",
                                                 "t1w_mni")])])
        scan_wf = init_scan_wf(scan, settings)
        workflow.connect([(anat_wfs[key], scan_wf, [
            ("outputnode.t1w_brain", "inputnode.t1w_brain"),
            ("outputnode.brain_mask", "inputnode.brain_mask"),
            ("outputnode.gm_prob", "inputnode.gm_prob"),
            ("outputnode.t1w2mni", "inputnode.t1w2mni"),
            ("outputnode.mni2t1w", "inputnode.mni2t1w"),
            ("outputnode.t1w_preproc", "inputnode.t1w_preproc"),
        ])])
    return workflow


def init_scan_wf(scan, settings):
    """One PET scan, from the raw image to its derivatives and report.

    Inputs (from the anatomical workflow): ``t1w_brain``, ``brain_mask``, ``gm_prob``,
    ``t1w2mni``, ``mni2t1w``, ``t1w_preproc``.
    """
    tracer = settings.tracer(scan.tracer)
    workflow = pe.Workflow(name=scan.ident)
    inputnode = pe.Node(niu.IdentityInterface(fields=[
        "pet", "sidecar", "t1w_brain", "brain_mask", "gm_prob", "t1w2mni", "mni2t1w",
        "t1w_preproc"]), name="inputnode")
    inputnode.inputs.pet = str(scan.pet)
    inputnode.inputs.sidecar = str(scan.sidecar)
    hmc = init_hmc_wf(omp_nthreads=settings.omp_nthreads)
    coreg = init_coreg_wf(omp_nthreads=settings.omp_nthreads)
    masks = init_refregion_wf(reference_region=tracer.reference_region)
    tacs = init_tacs_wf(reference_region=tracer.reference_region)
    voxelwise = init_voxelwise_wf(k2a_range=tracer.k2a_range_per_min(), n_bases=settings.n_bases)
    to_mni = {m: init_mni_wf(voxel_mm=settings.mni_voxel_mm, fwhm_mm=settings.smoothing_fwhm_mm,
                             name=f"mni_{m}_wf") for m in MAP_NAMES}
    sink = pe.Node(niu.Function(function=_scan_sink_node, output_names=["written"]),
                   name="derivatives")
    report = pe.Node(niu.Function(function=_report_node, output_names=["report"]),
                     name="report")
    def identify(node):  # what the derivatives and the report need to know of the scan
        node.inputs.output_dir = str(settings.output_dir)
        node.inputs.scan_name = scan.name
        node.inputs.subject = scan.subject
        node.inputs.session = scan.session
        node.inputs.reference_region = tracer.reference_region

    identify(sink)
    identify(report)
    sink.inputs.fwhm = settings.smoothing_fwhm_mm
    sink.inputs.provenance = {
        "Sources": [str(scan.pet), str(scan.sidecar), str(scan.t1w)],
        "SoftwareName": "petbind", "Tracer": tracer.name,
        "Theta3RangeMagiaPerMin": list(tracer.theta3_range_per_min),
        "Theta3RangeSource": tracer.source}
    report.inputs.methods = " ".join(
        w.__desc__ for w in (hmc, coreg, masks, tacs, voxelwise, to_mni["bpnd"]))

    workflow.connect([
        (inputnode, hmc, [("pet", "inputnode.pet"), ("sidecar", "inputnode.sidecar")]),
        (inputnode, coreg, [("t1w_brain", "inputnode.t1w_brain")]),
        (hmc, coreg, [("outputnode.petref", "inputnode.petref")]),
        (inputnode, masks, [("sidecar", "inputnode.sidecar"),
                            ("t1w_brain", "inputnode.t1w_brain"),
                            ("brain_mask", "inputnode.brain_mask"),
                            ("gm_prob", "inputnode.gm_prob"), ("mni2t1w", "inputnode.mni2t1w")]),
        (hmc, masks, [("outputnode.petref", "inputnode.petref"),
                      ("outputnode.pet_hmc", "inputnode.pet_hmc")]),
        (coreg, masks, [("outputnode.pet2t1w", "inputnode.pet2t1w")]),
        (inputnode, tacs, [("sidecar", "inputnode.sidecar")]),
        (hmc, tacs, [("outputnode.pet_hmc", "inputnode.pet_hmc")]),
        (masks, tacs, [("outputnode.atlas_pet", "inputnode.atlas_pet"),
                       ("outputnode.reference_mask", "inputnode.reference_mask")]),
        (inputnode, voxelwise, [("sidecar", "inputnode.sidecar")]),
        (hmc, voxelwise, [("outputnode.pet_hmc", "inputnode.pet_hmc")]),
        (masks, voxelwise, [("outputnode.reference_mask", "inputnode.reference_mask"),
                            ("outputnode.brain_mask_pet", "inputnode.brain_mask")]),
        (hmc, sink, [("outputnode.petref", "petref"), ("outputnode.motion_tsv", "motion_tsv")]),
        (masks, sink, [("outputnode.reference_mask", "reference_mask"),
                       ("outputnode.brain_mask_pet", "brain_mask_pet"),
                       ("outputnode.atlas_pet", "atlas_pet")]),
        (tacs, sink, [("outputnode.tacs", "tacs"), ("outputnode.kinpar", "kinpar")]),
        (voxelwise, sink, [("outputnode.bpnd", "bpnd"), ("outputnode.r1", "r1"),
                           ("outputnode.k2", "k2"), ("outputnode.fit_info", "fit_info")]),
        (hmc, report, [("outputnode.motion_tsv", "motion_tsv"),
                       ("outputnode.petref", "petref")]),
        (coreg, report, [("outputnode.petref_t1w", "petref_t1w")]),
        (inputnode, report, [("t1w_preproc", "t1w"), ("sidecar", "sidecar")]),
        (masks, report, [("outputnode.reference_mask", "reference_mask")]),
        (tacs, report, [("outputnode.tacs", "tacs"), ("outputnode.kinpar", "kinpar")]),
        (voxelwise, report, [("outputnode.fit_info", "fit_info")]),
        (to_mni["bpnd"], report, [("outputnode.mni", "bpnd_mni")]),
        (sink, report, [("written", "written")]),
    ])
    if settings.pvc_psf_fwhm_mm:
        pvc = init_pvc_wf(psf_fwhm_mm=settings.pvc_psf_fwhm_mm,
                          reference_region=tracer.reference_region)
        pvc_sink = pe.Node(niu.Function(function=_pvc_sink_node, output_names=["written"]),
                           name="derivatives_pvc")
        identify(pvc_sink)
        pvc_sink.inputs.psf_fwhm_mm = settings.pvc_psf_fwhm_mm
        pvc_sink.inputs.provenance = sink.inputs.provenance
        report.inputs.methods += " " + pvc.__desc__
        workflow.connect([
            (inputnode, pvc, [("sidecar", "inputnode.sidecar"),
                              ("mni2t1w", "inputnode.mni2t1w"),
                              ("brain_mask", "inputnode.brain_mask")]),
            (hmc, pvc, [("outputnode.petref", "inputnode.petref"),
                        ("outputnode.pet_hmc", "inputnode.pet_hmc"),
                        ("outputnode.motion_tsv", "inputnode.motion_tsv")]),
            (coreg, pvc, [("outputnode.pet2t1w", "inputnode.pet2t1w")]),
            (masks, pvc, [("outputnode.reference_mask", "inputnode.reference_mask")]),
            (pvc, pvc_sink, [("outputnode.tacs", "tacs"), ("outputnode.kinpar", "kinpar"),
                             ("outputnode.resolution_mm", "resolution_mm")]),
        ])
    for m in MAP_NAMES:
        workflow.connect([
            (voxelwise, to_mni[m], [(f"outputnode.{m}", "inputnode.pet_map")]),
            (coreg, to_mni[m], [("outputnode.pet2t1w", "inputnode.pet2t1w")]),
            (inputnode, to_mni[m], [("t1w2mni", "inputnode.t1w2mni")]),
            (to_mni[m], sink, [("outputnode.mni", f"mni_{m}"),
                               ("outputnode.mni_smoothed", f"mni_sm_{m}")]),
        ])
    return workflow


def _scan_sink_node(output_dir, scan_name, subject, session, reference_region, fwhm, provenance,
                    petref, motion_tsv, reference_mask, brain_mask_pet, atlas_pet, tacs, kinpar,
                    bpnd, r1, k2, fit_info, mni_bpnd, mni_r1, mni_k2, mni_sm_bpnd, mni_sm_r1,
                    mni_sm_k2):
    from bids_app.derivatives import write_scan_derivatives
    products = dict(locals())
    for key in ("output_dir", "scan_name", "subject", "session", "provenance"):
        products.pop(key)
    products["reference_region"] = reference_region
    return write_scan_derivatives(output_dir, scan_name, subject, session, products, provenance)


def _pvc_sink_node(output_dir, scan_name, subject, session, reference_region, psf_fwhm_mm,
                   resolution_mm, provenance, tacs, kinpar):
    from bids_app.derivatives import write_pvc_derivatives
    return write_pvc_derivatives(output_dir, scan_name, subject, session, reference_region,
                                 psf_fwhm_mm, resolution_mm, tacs, kinpar, provenance)


def _anat_sink_node(output_dir, subject, session, t1w_preproc, brain_mask, dseg, gm_prob,
                    t1w_mni):
    from bids_app.derivatives import write_anat_derivatives
    products = {"t1w_preproc": t1w_preproc, "brain_mask": brain_mask, "dseg": dseg,
                "gm_prob": gm_prob, "t1w_mni": t1w_mni}
    return write_anat_derivatives(output_dir, subject, session, products,
                                  {"SoftwareName": "petbind"})


def _report_node(output_dir, scan_name, subject, session, reference_region, methods, motion_tsv,
                 petref, petref_t1w, t1w, sidecar, reference_mask, tacs, kinpar, fit_info,
                 bpnd_mni, written):
    from bids_app.reports import scan_report
    return scan_report(output_dir, scan_name, subject, session, reference_region, methods,
                       motion_tsv, petref, petref_t1w, t1w, sidecar, reference_mask, tacs,
                       kinpar, fit_info, bpnd_mni)
