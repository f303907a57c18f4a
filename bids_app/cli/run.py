"""petbind: validate the request, build the graph and run it."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from bids_app.cli.common import run_cli
from bids_app.cli.parser import build_parser
from bids_app.config import Config, GroupConfig, ParticipantConfig, RunConfig, read_config_file
from bids_app.errors import (EX_CANTCREAT, EX_DATAERR, EX_FAILURE, EX_NOINPUT, EX_USAGE,
                             PetbindError)


def inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def run_config_from_args(args) -> RunConfig:
    """Folders, selection and resources, checked: the output and work folders outside the input
    dataset (its derivatives/ folder allowed for the output)."""
    bids_dir = args.bids_dir.resolve()
    output_dir = args.output_dir.resolve()
    # BIDS sets bids_dir/derivatives/ aside for derivatives; anywhere else inside is refused
    if inside(output_dir, bids_dir) and not inside(output_dir, bids_dir / "derivatives"):
        raise PetbindError(f"{args.output_dir}: the output directory is (inside) the input "
                           "dataset; choose one outside it, or under its derivatives/ folder, "
                           f"e.g. {bids_dir / 'derivatives' / 'petbind'}", EX_USAGE)
    default_work = (Path(os.environ["PETBIND_WORK_DIR"]) if os.environ.get("PETBIND_WORK_DIR")
                    else bids_dir.parent / f"{bids_dir.name}_petbind_work"
                    if inside(output_dir, bids_dir) else output_dir.parent / "petbind_work")
    work_dir = (args.work_dir or default_work).resolve()
    if inside(work_dir, bids_dir):
        raise PetbindError(f"{work_dir}: the work directory is inside the input dataset; "
                           "choose -w outside it", EX_USAGE)
    for folder in args.derivatives:
        for what, path, option in (("output", output_dir, "output directory"),
                                   ("work", work_dir, "-w")):
            if inside(path, folder.resolve()):
                raise PetbindError(f"{path}: the {what} directory is inside --derivatives "
                                   f"{folder}, which is input; choose another {option}",
                                   EX_USAGE)
    filters = read_filter_file(args.bids_filter_file) if args.bids_filter_file else {}
    try:
        plugin_args = json.loads(args.plugin_args)
    except json.JSONDecodeError:
        plugin_args = None
    if not isinstance(plugin_args, dict):
        raise PetbindError("--plugin-args must be a JSON object, e.g. '{\"n_procs\": 4}'",
                           EX_USAGE)
    if args.plugin not in PLUGINS:
        raise PetbindError(f"--plugin {args.plugin!r}: one of {', '.join(PLUGINS)}", EX_USAGE)
    for option, value in (("--nprocs", args.nprocs), ("--omp-nthreads", args.omp_nthreads)):
        if value < 1:
            raise PetbindError(f"{option} {value}: give 1 or more", EX_USAGE)
    if args.mem is not None and not args.mem > 0:
        raise PetbindError(f"--mem {args.mem:g}: give the memory in GB", EX_USAGE)
    return RunConfig(
        bids_dir=bids_dir, output_dir=output_dir, work_dir=work_dir,
        analysis_level=args.analysis_level, participant_labels=args.participant_label,
        session_labels=args.session_label, tracers=args.tracer, bids_filters=filters,
        nprocs=args.nprocs, omp_nthreads=args.omp_nthreads, mem_gb=args.mem,
        skip_bids_validation=args.skip_bids_validation,
        stop_on_first_crash=args.stop_on_first_crash, plugin=args.plugin,
        plugin_args=plugin_args, verbosity=-1 if args.quiet else args.verbose,
        derivatives=[d.resolve() for d in args.derivatives], reference_tac=args.reference_tac)


# nipype's execution plugins (the names --plugin takes)
PLUGINS = ("Linear", "MultiProc", "LegacyMultiProc", "SLURM", "SLURMGraph", "SGE", "SGEGraph",
           "PBS", "PBSGraph", "LSF", "OAR", "Condor", "CondorDAGMan", "IPython")
LOCAL_PLUGINS = ("Linear", "MultiProc", "LegacyMultiProc")
# what a filter file may select on: pybids entities, but not what petbind itself fixes
FILTER_QUERIES = ("pet", "t1w")
FILTER_FIXED = ("subject", "suffix", "extension", "datatype", "scope", "return_type")


def read_filter_file(path: Path) -> dict:
    """--bids-filter-file: {"pet": {...}, "t1w": {...}}, each mapping pybids entities to a label,
    a list of labels or null; checked here, before any work."""
    from bids.layout import Config as BIDSConfig

    if not path.is_file():
        raise PetbindError(f"{path}: no such filter file", EX_NOINPUT)
    try:
        filters = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PetbindError(f"{path}: not valid JSON ({err})", EX_DATAERR) from None
    if not isinstance(filters, dict) or set(filters) - set(FILTER_QUERIES):
        raise PetbindError(f"{path}: must be an object with the keys {', '.join(FILTER_QUERIES)}"
                           ", e.g. {\"pet\": {\"session\": \"baseline\"}}", EX_DATAERR)
    entities = set(BIDSConfig.load("bids").entities) - set(FILTER_FIXED)
    for query, selection in filters.items():
        if not isinstance(selection, dict):
            raise PetbindError(f"{path}: \"{query}\" must be an object of entity -> label",
                               EX_DATAERR)
        for key, value in selection.items():
            if key not in entities:
                raise PetbindError(f"{path}: \"{query}\" cannot select on {key!r}; entities: "
                                   f"{', '.join(sorted(entities))}", EX_DATAERR)
            values = value if isinstance(value, list) else [value]
            if not all(v is None or isinstance(v, (str, int)) and not isinstance(v, bool)
                       for v in values):
                raise PetbindError(f"{path}: \"{query}\".{key} must be a label, a list of "
                                   "labels or null", EX_DATAERR)
    return filters


def _session(label: str | None) -> str | None:
    return label.removeprefix("ses-") if label else label


def config_from_args(args) -> Config:
    """The whole configuration of a run, validated before any work."""
    run = run_config_from_args(args)
    extra = read_config_file(args.config_file) if args.config_file else {}
    if args.analysis_level == "group" and len(args.model) != 1:
        raise PetbindError("--model: the group level analyses the maps of one model",
                           EX_USAGE)
    if args.analysis_level == "group" and len(args.session_label) > 1:
        raise PetbindError("--session-label: the group analysis compares participants within "
                           "one session; give one", EX_USAGE)
    participant = ParticipantConfig(
        models=args.model, seed=args.seed, skull_strip_t1w=args.skull_strip_t1w,
        smoothing_fwhm_mm=args.smoothing_fwhm if args.smoothing_fwhm is not None else
        float(extra.get("smoothing_fwhm", 8.0)),
        n_bases=int(extra.get("n_bases", 300)), pvc_psf_fwhm_mm=args.pvc_psf_fwhm,
        pvc_method=args.pvc_method,
        tracer_overrides=extra.get("tracers", {}),
        qc_thresholds=extra.get("qc_thresholds", {}))
    group = GroupConfig(
        group_column=args.group_column, reference_group=args.reference_group,
        covariates=args.covariates, smoothing=args.smoothing,
        cluster_threshold=args.cluster_threshold, fdr_q=args.fdr_q,
        n_permutations=args.n_permutations, voxel_fdr=args.voxel_fdr, tfce=args.tfce,
        roi_atlas=args.roi_atlas, model=args.model[0], seed=args.seed,
        mni_voxel_mm=participant.mni_voxel_mm, exclude_flagged=args.exclude_flagged,
        pvc=args.pvc, roi_source=args.roi_source,
        session=args.session_label[0].removeprefix("ses-") if args.session_label else None,
        analysis=args.analysis, baseline_session=_session(args.baseline_session),
        blocked_session=_session(args.blocked_session), test_session=_session(args.test_session),
        retest_session=_session(args.retest_session), exposure_column=args.exposure_column,
        fit_omax=args.fit_omax, min_baseline_bpnd=args.min_baseline_bpnd)
    return Config(run, participant, group)


def set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[var] = str(n)
    os.environ.setdefault("NIPYPE_NO_ET", "1")


def say(config: Config, message: str, level: int = 0) -> None:
    if config.run.verbosity >= level:
        print(f"petbind: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    set_threads(config.run.omp_nthreads)
    if args.analysis_level == "group":
        from bids_app.group import run_group
        return run_group(config)
    return run_participant(config)


def run_participant(config: Config) -> int:
    from bids_app.bids import check_dataset, find_scans, validate_or_fail
    from bids_app.bids_io import writes_confined_to
    from bids_app.participant import init_petbind_wf

    run = config.run
    check_dataset(run.bids_dir)
    if not run.skip_bids_validation:
        say(config, "validating the input with bids-validator-deno")
        validate_or_fail(run.bids_dir)
    folders = petprep_folders(config)
    scans, tac_scans, refused = use_preprocessed(
        config, folders, find_scans(run, allow_none=bool(folders)))
    logs = run.output_dir / "logs"
    # nipype copies its configuration into every workflow when it is made: configure first;
    # the graph is checked against the resources before anything is written
    configure_nipype(config, logs)
    workflow, methods = init_petbind_wf(scans, config, tac_scans)
    check_resources(config, workflow)
    with writes_confined_to(run.output_dir, run.work_dir):
        write_run_files(config, methods)
    listed = list(dict.fromkeys(s.name for s in [*tac_scans, *scans]))
    say(config, f"{len(listed)} scan(s) to process: " + ", ".join(listed))
    for name, err in refused:
        say(config, f"{name}: not processed: {err}", level=-1)
    code = execute(config, [*tac_scans, *scans], workflow)
    for name, err in refused:
        say(config, f"  REFUSED {name} (bad input: {err})", level=-1)
    return code or (refused[0][1].exit_code if refused else 0)


def petprep_folders(config: Config) -> list:
    """The PETPrep folders among ``--derivatives`` (none without it)."""
    from bids_app.petprep import derivative_folders

    run = config.run
    if not run.derivatives:
        if run.reference_tac:
            raise PetbindError("--reference-tac names labels of a segmentation made elsewhere; "
                               "give --derivatives too", EX_USAGE)
        return []
    folders, ignored = derivative_folders(run.derivatives)
    for path in ignored:
        say(config, f"{path}: not PETPrep output; ignored")
    return folders


def use_preprocessed(config: Config, folders: list, scans: list) -> tuple[list, list, list]:
    """What PETPrep made, in place of petbind's own stages: a raw scan with PETPrep's image in
    T1w space goes on from that image, a T1w with PETPrep's normalisation to the template is
    not normalised again; a scan with PETPrep's TACs alone gets regional fits of
    them (:class:`bids_app.petprep.TacScan`); the others are preprocessed by petbind. Each is
    checked before any work (a raw scan's bad input stops the run, as without PETPrep; bad
    PETPrep output refuses that scan alone). Returns the scans for the full pipeline, the TAC
    scans, and those refused for bad input by name with the error."""
    from bids_app.bids import check_scan
    from bids_app.petprep import (check_image, check_tac_scan, check_transforms, find_image,
                                  find_tac_scans, find_transforms)

    run = config.run
    found, refused = find_tac_scans(folders, run) if folders else ([], [])
    normalisations = {}                          # per T1w: scans may share one
    for scan in scans:
        scan.preprocessed = find_image(folders, run.bids_dir, scan.pet) if folders else None
        if folders and scan.t1w not in normalisations:
            normalisations[scan.t1w], note = find_transforms(folders, run.bids_dir, scan.t1w)
            if note:
                say(config, note)
        scan.normalisation = normalisations.get(scan.t1w)
    with_image = {s.name for s in scans if s.preprocessed}
    tac_only = {t.name for t in found} - with_image
    full = []
    for scan in scans:
        if scan.name in tac_only:      # regional fits of PETPrep's TACs, not preprocessed again
            continue
        check_scan(scan, config.participant)
        try:
            if scan.preprocessed:
                check_image(scan.preprocessed, scan.metadata.timing.n_frames, scan.sidecar)
            if scan.normalisation:
                check_transforms(scan.normalisation)
            full.append(scan)
        except PetbindError as err:               # one scan's bad input stops no other scan
            refused.append((scan.name, err))
    tac_scans, image_route = [], {s.name for s in full}
    for scan in found:
        try:
            check_tac_scan(scan, config.participant, run.reference_tac)
            # with PETPrep's image too, the image's route writes the scan's QC and report
            scan.record["with_image"] = scan.name in image_route
            tac_scans.append(scan)
        except PetbindError as err:
            if err.exit_code == EX_USAGE:
                raise
            refused.append((scan.name, err))
    if refused and not full and not tac_scans:
        raise refused[0][1]
    if not full and not tac_scans:
        raise PetbindError(f"{run.bids_dir}: no PET scan matches the selection, raw or in "
                           f"{', '.join(str(f.root) for f in folders)}; check the labels and "
                           "filters", EX_NOINPUT)
    return full, tac_scans, refused


def write_run_files(config: Config, methods: dict[str, list[str]]) -> None:
    """The output dataset's description, the configuration (work dir), the settings and the
    methods text (logs)."""
    from bids_app.bids_io import write_json, write_text
    from bids_app.boilerplate import write_citation
    from bids_app.derivatives import init_output_dataset

    run = config.run
    logs = run.output_dir / "logs"
    try:
        for folder in (run.output_dir, run.work_dir, logs):
            folder.mkdir(parents=True, exist_ok=True)
        init_output_dataset(run.output_dir, run.bids_dir)
        write_text(run.work_dir / "petbind_config.json", config.to_json())
        write_json(logs / "participant_settings.json", config.participant.record())
        write_citation(logs, "Methods: petbind participant level", merge_methods(methods))
    except OSError as err:
        raise PetbindError(f"{err.filename}: cannot write ({err.strerror}); choose a writable "
                           "output/work directory", EX_CANTCREAT) from None


def merge_methods(methods: dict[str, list[str]]) -> list[str]:
    """One methods text for the tracers and routes of a run: each paragraph once, in order."""
    return list(dict.fromkeys(p for paragraphs in methods.values() for p in paragraphs))


def check_resources(config: Config, workflow) -> None:
    """With MultiProc, --mem and --nprocs must fit the largest step, or nipype refuses to run
    it (a usage error before any work, not a failed run)."""
    if config.run.plugin != "MultiProc":
        return
    nodes = workflow._get_all_nodes()
    need_gb = max(node.mem_gb for node in nodes)
    need_procs = max(node.n_procs for node in nodes)
    if config.run.mem_gb is not None and config.run.mem_gb < need_gb:
        raise PetbindError(f"--mem {config.run.mem_gb:g}: petbind's largest step needs "
                           f"{need_gb:g} GB; give at least that", EX_USAGE)
    if config.run.nprocs < need_procs:
        raise PetbindError(f"--nprocs {config.run.nprocs}: steps run with --omp-nthreads "
                           f"{need_procs} threads; give --nprocs at least that", EX_USAGE)


def configure_nipype(config: Config, crash_dir: Path) -> None:
    from nipype import config as nipype_config, logging as nlogging

    nipype_config.update_config({
        "execution": {"crashdump_dir": str(crash_dir), "crashfile_format": "txt",
                      "stop_on_first_crash": config.run.stop_on_first_crash,
                      "remove_unnecessary_outputs": False, "hash_method": "content",
                      "check_version": False,
                      # local plugins check for finished steps 4 times a second (nipype's 2 s
                      # idles a step's dependants); a cluster's queue is asked every 2 s
                      "poll_sleep_duration": 0.25 if config.run.plugin in LOCAL_PLUGINS
                      else 2},
        "monitoring": {"enabled": False}})
    nipype_config.update_config({"logging": {"workflow_level": "INFO",
                                             "interface_level": "WARNING"}})
    nlogging.update_logging(nipype_config)
    # nipype's own console handler shows INFO only with -v; our progress handler counts nodes
    console = logging.INFO if config.run.verbosity >= 1 else logging.WARNING
    for handler in logging.getLogger("nipype").handlers:
        handler.setLevel(console)


def execute(config: Config, scans, workflow) -> int:
    """Run the graph (nipype configured by :func:`configure_nipype` before it was made) and
    summarise which scans succeeded."""
    run = config.run
    crash_dir = run.output_dir / "logs"
    before = set(crash_dir.glob("crash-*"))
    plugin_args = dict(run.plugin_args)
    if run.plugin == "MultiProc":
        plugin_args.setdefault("n_procs", run.nprocs)
        if run.mem_gb:
            plugin_args.setdefault("memory_gb", run.mem_gb)
    n_nodes = len(workflow._get_all_nodes())
    say(config, f"running {n_nodes} nodes with the {run.plugin} plugin; work dir "
        f"{run.work_dir}")
    start = time.time()
    failed_run = None
    if run.verbosity >= 0 and not run.plugin.endswith("Graph"):
        plugin_args["status_callback"] = Progress(n_nodes, config, workflow.name)
    if run.plugin not in LOCAL_PLUGINS:
        # nipype's cluster plugins name their jobs after $LOGNAME, which batch jobs,
        # `apptainer --cleanenv` and containers often lack
        os.environ.setdefault("LOGNAME", login_name())
    try:
        workflow.run(plugin=run.plugin, plugin_args=plugin_args)
    except Exception as err:  # nipype raises RuntimeError when nodes crashed
        failed_run = err
    crashes = sorted(set(crash_dir.glob("crash-*")) - before)
    return summarise(config, scans, crashes, failed_run, time.time() - start)


def login_name() -> str:
    """The user's name (the password database's, else the user id)."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


class Progress:
    """nipype's status callback: called in the scheduling process (whatever the plugin's
    workers are) when a node starts, ends or fails, so the count is the whole graph's."""

    def __init__(self, total: int, config: Config, graph: str) -> None:
        self.total, self.done, self.config, self.graph = total, 0, config, graph

    def __call__(self, node, status: str) -> None:
        name = node.fullname.removeprefix(self.graph + ".")
        if status == "end":
            self.done += 1
            say(self.config, f"[{self.done}/{self.total}] done: {name}")
        elif status == "start":
            say(self.config, f"running: {name}")
        elif status == "exception":
            say(self.config, f"failed: {name} (crash file in the logs folder)")


def crash_concerns(crash: Path, scan) -> bool:
    """Whether a nipype crash file is about this scan or its subject's anatomy: the node's path
    in the file (crash files are named after the node alone) holds the scan's or the subject's
    node name."""
    try:
        head = crash.read_text(errors="replace")[:4000]
    except OSError:
        return False
    names = [re.escape(scan.ident), re.escape(f"sub{scan.subject}")]
    return bool(re.search(rf"(?<![A-Za-z0-9])({'|'.join(names)})(?![A-Za-z0-9])", head))


def qc_warnings(qc_tsv: Path) -> list[str]:
    """The flagged QC metrics of a finished scan, one line each."""
    import pandas as pd

    from workflows.imaging.qc import flagged_messages
    return flagged_messages(pd.read_csv(qc_tsv, sep="\t")) if qc_tsv.is_file() else []


def summarise(config: Config, scans, crashes, failed_run, seconds: float) -> int:
    from bids_app import names
    from bids_app.petprep import tac_report_name
    from workflows.kinetics.models import get_model

    out_dir = config.run.output_dir
    label = get_model(config.participant.models[0]).label
    ok, bad = [], []
    for scan in scans:
        if hasattr(scan, "folder"):              # TACs from PETPrep: regional fits only
            fits = names.subject_dir(out_dir, scan.subject, scan.session, "pet").glob(
                f"{scan.entities.prefix}_*model-SRTM_kinpar.tsv")      # with pvc- or without
            done = (out_dir / tac_report_name(scan.record)).exists() and any(fits)
        else:
            bpnd = names.scan_file(out_dir, scan.entities, "mimap", ".nii.gz",
                                   space=names.TEMPLATE_SPACE, model=label, meas="BPND")
            done = bpnd.exists() and (out_dir / names.report_name(scan.entities)).exists()
        mine = [c for c in crashes if crash_concerns(c, scan)]
        (bad if (not done or (mine and failed_run)) else ok).append((scan, mine))
    say(config, f"finished in {seconds / 60:.1f} min: {len(ok)} scan(s) succeeded, "
        f"{len(bad)} failed", level=-1 if bad else 0)
    for scan, _ in ok:
        if hasattr(scan, "folder"):
            say(config, f"  ok      {scan.name} (regional fits of {scan.folder.source} TACs, "
                f"seg-{scan.seg}; report: {out_dir / tac_report_name(scan.record)})")
        else:
            made = [what for what, used in (("its image", scan.preprocessed),
                                             ("its normalisation", scan.normalisation)) if used]
            source = (f"{(scan.preprocessed or scan.normalisation)['source']} "
                      f"({' and '.join(made)})" if made else "petbind")
            say(config, f"  ok      {scan.name} (preprocessed by {source}; report: "
                f"{out_dir / names.report_name(scan.entities)})")
        for warning in qc_warnings(names.scan_file(out_dir, scan.entities, "qc", ".tsv")):
            say(config, f"          {warning}", level=-1)
    for scan, mine in bad:
        where = ", ".join(str(c) for c in mine) or f"see {out_dir / 'logs'}"
        say(config, f"  FAILED  {scan.name} (crash file: {where})", level=-1)
    if failed_run is not None and (not bad or not crashes):
        # without crash files the scheduler itself failed: its error is the only clue
        say(config, f"  nipype reported: {type(failed_run).__name__}: {failed_run}", level=-1)
        return EX_FAILURE
    return EX_FAILURE if bad else 0


def entry() -> None:
    sys.exit(run_cli("petbind", main))


if __name__ == "__main__":
    entry()
