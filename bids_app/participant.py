"""The participant level's graph: for each T1w the anatomical workflow, for each PET scan the
processing workflow (:func:`workflows.base.init_pet_wf`), and the app's nodes that write each
scan's derivatives and report once the scan is complete."""

from __future__ import annotations

from nipype.pipeline import engine as pe

from bids_app.bids import Scan
from bids_app.boilerplate import intro
from bids_app.config import Config
from bids_app.interfaces import ScanWriter
from bids_app.names import ATLAS_SEG
from workflows.anat import init_anat_wf
from workflows.base import ANAT_INPUTS, SCAN_OUTPUTS, init_pet_wf, model_outputs, pvc_outputs

ANAT_OUTPUTS = ("t1w_preproc", "brain_mask", "dseg", "gm_prob", "t1w_mni")
REPORT_INPUTS = ("motion_tsv", "petref", "petref_t1w", "reference_mask", "atlas_pet", "tacs",
                 "kinpar", "qc")
REPORT_ANAT = ("t1w_preproc", "brain_mask", "dseg", "t1w_mni")


def workflow_name() -> str:
    """The graph's name, and so its folder in the work directory: one per petbind version (a
    work dir reused after an upgrade must not hand back results of the old code: nipype reuses
    a node by the hash of its inputs, not of the code)."""
    import bids_app

    return "petbind_" + "".join(c if c.isalnum() else "_" for c in bids_app.__version__) + "_wf"


def scan_record(scan: Scan, config: Config) -> dict:
    """What the writers and the report know of a scan: its entities, settings, metadata and
    provenance (plain values: a node input)."""
    tracer = config.participant.tracer(scan.tracer)
    elsewhere = scan.preprocessed
    sources = [str(scan.pet), str(scan.sidecar), str(scan.t1w)]
    if elsewhere:
        sources[:1] = [elsewhere["pet"]] + ([elsewhere["confounds"]] if elsewhere["confounds"]
                                            else [])
    if scan.normalisation:
        sources += [scan.normalisation["t1w2mni"], scan.normalisation["mni2t1w"]]
    return {"subject": scan.subject, "session": scan.session, "tracer": scan.tracer,
            "run": scan.run, "reference_region": tracer.reference_region,
            "models": config.participant.models,
            "smoothing_fwhm_mm": config.participant.smoothing_fwhm_mm,
            "pvc_psf_fwhm_mm": config.participant.pvc_psf_fwhm_mm,
            "pvc_method": config.participant.pvc_method,
            "metadata": scan.metadata.as_record(), "preprocessed": elsewhere,
            "normalisation": scan.normalisation,
            "provenance": {"Sources": sources, "SoftwareName": "petbind", "Tracer": tracer.name,
                           "Theta3RangeMagiaPerMin": list(tracer.theta3_range_per_min),
                           "Theta3RangeSource": tracer.source,
                           **({"PreprocessedBy": elsewhere["source"],
                               "PreprocessedDerivatives": elsewhere["root"]} if elsewhere
                              else {})}}


def init_scan_wf(scan: Scan, config: Config) -> pe.Workflow:
    """One scan's processing (:func:`workflows.base.init_pet_wf`) with the settings of its
    tracer."""
    settings = config.participant
    tracer = settings.tracer(scan.tracer)
    return init_pet_wf(metadata=scan.metadata.as_record(),
                       reference_region=tracer.reference_region, models=settings.models,
                       k2a_range=tracer.k2a_range_per_min(), n_bases=settings.n_bases,
                       smoothing_fwhm_mm=settings.smoothing_fwhm_mm,
                       mni_voxel_mm=settings.mni_voxel_mm,
                       pvc_psf_fwhm_mm=settings.pvc_psf_fwhm_mm,
                       pvc_method=settings.pvc_method,
                       omp_nthreads=config.run.omp_nthreads, name=scan.ident,
                       qc_thresholds=settings.qc_thresholds,
                       preprocessed={"source": scan.preprocessed["source"],
                                     "confounds": scan.preprocessed["confounds"]}
                       if scan.preprocessed else None)


def writer_node(writer: str, fields: list[str], record: dict, config: Config,
                name: str) -> pe.Node:
    node = pe.Node(ScanWriter(writer=writer, fields=fields), name=name)
    # copying files is no job for a cluster's queue: the scheduling process writes them
    # (the reports draw figures: they stay jobs)
    node.run_without_submitting = not writer.endswith("report")
    node.inputs.output_dir = str(config.run.output_dir)
    node.inputs.scan = record
    return node


def init_petbind_wf(scans: list[Scan], config: Config, tac_scans: list | None = None
                    ) -> tuple[pe.Workflow, dict[str, list]]:
    """All scans in one graph (so any nipype plugin can schedule them), and the methods text of
    each tracer and route (paragraphs with citation keys). ``tac_scans``: scans with TACs made
    elsewhere (:class:`bids_app.petprep.TacScan`, checked), fitted region by region."""
    workflow = pe.Workflow(name=workflow_name(), base_dir=str(config.run.work_dir))
    methods: dict[str, list[str]] = {}
    for scan in tac_scans or []:
        _add_regional(workflow, scan, config, methods)
    anat_wfs: dict[str, pe.Workflow] = {}
    with_tacs = {t.name for t in tac_scans or []}
    for scan in scans:
        key = str(scan.t1w)
        if key not in anat_wfs:
            anat_wfs[key] = _add_anat(workflow, scan, config)
        pet_wf = init_scan_wf(scan, config)
        record = scan_record(scan, config)
        # PETPrep's TAC fits of the scan keep the plain names; the atlas's fits name their seg
        record["regional_seg"] = ATLAS_SEG if scan.name in with_tacs else None
        which = (f"The {scan.tracer} scans that {scan.preprocessed['source']} preprocessed"
                 if scan.preprocessed else f"The {scan.tracer} scans")
        record["methods"] = [intro("participant"), anat_wfs[key].__desc__,
                             f"{which} were processed as follows. " + pet_wf.__desc__]
        # one text per tracer and route (a run may mix PETPrep's images and its own)
        route = (scan.preprocessed or {}).get("source"), (scan.normalisation or {}).get("source")
        methods.setdefault(f"{scan.tracer} {route}", record["methods"])
        _add_scan_outputs(workflow, anat_wfs[key], pet_wf, scan, record, config)
    return workflow, methods


def _add_regional(workflow: pe.Workflow, scan, config: Config, methods: dict) -> None:
    """Each TAC table of a scan from PETPrep (uncorrected and partial-volume corrected): its
    regional fits and their writer."""
    from workflows.regional import init_regional_wf, node_key, regional_models

    record = scan.record
    # the report follows the uncorrected table (PETPrep writes one), else the first
    report_table = next((t for t in record["tables"] if t["pvc"] is None), record["tables"][0])
    for table in record["tables"]:
        suffix = f"_pvc{table['pvc']}" if table["pvc"] else ""
        regional_wf = init_regional_wf(table=table, reference=record["reference"],
                                       theta3_range_per_min=record["theta3_range_per_min"],
                                       name=f"{scan.ident}_regional{suffix}")
        paragraphs = [intro("participant"), f"The {scan.tracer} scans preprocessed by "
                      f"{scan.folder.source} were processed as follows. " + regional_wf.__desc__]
        methods.setdefault(f"{scan.tracer} {scan.folder.source} TACs", paragraphs)
        fields = ["tacs", *[f"{node_key(m)}_kinpar" for m in regional_models()]]
        sink = writer_node("regional", fields, {**record, "table": table, "qc_thresholds":
                                                config.participant.qc_thresholds}, config,
                           f"{scan.ident}_regional_derivatives{suffix}")
        workflow.connect([(regional_wf, sink, [(f"outputnode.{f}", f) for f in fields])])
        if table is report_table:           # the report, once these fits are written
            report = writer_node("regional_report", ["written"],
                                 {**record, "table": table, "methods": paragraphs}, config,
                                 f"{scan.ident}_regional_report")
            workflow.connect(sink, "out", report, "written")


def _add_anat(workflow: pe.Workflow, scan: Scan, config: Config) -> pe.Workflow:
    """The anatomical workflow of the scan's T1w and the writer of its derivatives."""
    anat_name = "anat_" + scan.t1w.name.split(".")[0].replace("-", "").replace(".", "_")
    anat_wf = init_anat_wf(omp_nthreads=config.run.omp_nthreads, seed=config.participant.seed,
                           skull_strip=config.participant.skull_strip_t1w,
                           transforms=scan.normalisation, name=anat_name)
    anat_wf.inputs.inputnode.t1w = str(scan.t1w)
    # the T1w's session when it has one (a T1w shared by sessions has none)
    session = scan.session if f"ses-{scan.session}" in str(scan.t1w) else None
    sink = writer_node("anat", list(ANAT_OUTPUTS), {"subject": scan.subject,
                                                    "session": session}, config,
                       f"{anat_name}_sink")
    workflow.connect([(anat_wf, sink, [(f"outputnode.{f}", f) for f in ANAT_OUTPUTS])])
    return anat_wf


def _add_scan_outputs(workflow: pe.Workflow, anat_wf: pe.Workflow, pet_wf: pe.Workflow,
                      scan: Scan, record: dict, config: Config) -> None:
    """Connect the scan's processing to its anatomy, its derivative writers and its report."""
    models = [f for m in config.participant.models for f in model_outputs(m)]
    products = [f for f in SCAN_OUTPUTS if f != "petref_t1w"] + models
    # the report shows the maps corrected voxel by voxel too (their MNI maps)
    settings = config.participant
    corrected = [f for f in pvc_outputs(settings.models, settings.pvc_method)
                 if f.endswith("_mni")] if settings.pvc_psf_fwhm_mm else []
    sink = writer_node("scan", products, record, config, f"{scan.ident}_derivatives")
    report = writer_node("report", [*REPORT_INPUTS, *REPORT_ANAT, "written", *models,
                                    *corrected], record, config, f"{scan.ident}_report")
    workflow.connect([
        (anat_wf, pet_wf, [(f"outputnode.{f}", f"inputnode.{f}") for f in ANAT_INPUTS]),
        (pet_wf, sink, [(f"outputnode.{f}", f) for f in products]),
        (pet_wf, report, [(f"outputnode.{f}", f) for f in (*REPORT_INPUTS, *models,
                                                             *corrected)]),
        (anat_wf, report, [(f"outputnode.{f}", f) for f in REPORT_ANAT]),
        (sink, report, [("out", "written")]),
    ])
    pet_wf.inputs.inputnode.pet = scan.preprocessed["pet"] if scan.preprocessed else str(scan.pet)
    if config.participant.pvc_psf_fwhm_mm:
        fields = pvc_outputs(config.participant.models, config.participant.pvc_method)
        pvc_sink = writer_node("pvc", fields, record, config, f"{scan.ident}_derivatives_pvc")
        workflow.connect([(pet_wf, pvc_sink, [(f"outputnode.{f}", f) for f in fields])])
