"""petbind: validate the request, build the graph and run it."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Sequence

from bids_app.cli.common import run_cli
from bids_app.cli.parser import build_parser
from bids_app.config import Settings, read_config_file
from bids_app.errors import (EX_CANTCREAT, EX_DATAERR, EX_FAILURE, EX_NOINPUT, EX_USAGE,
                             PetbindError)


def inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def settings_from_args(args) -> Settings:
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
    filters = {}
    if args.bids_filter_file:
        if not args.bids_filter_file.is_file():
            raise PetbindError(f"{args.bids_filter_file}: no such filter file", EX_NOINPUT)
        try:
            filters = json.loads(args.bids_filter_file.read_text())
        except json.JSONDecodeError as err:
            raise PetbindError(f"{args.bids_filter_file}: not valid JSON ({err.msg})",
                               EX_DATAERR) from None
    try:
        plugin_args = json.loads(args.plugin_args)
    except json.JSONDecodeError:
        raise PetbindError("--plugin-args must be JSON, e.g. '{\"n_procs\": 4}'",
                           EX_USAGE) from None
    if args.pvc_psf_fwhm is not None and not 0 < args.pvc_psf_fwhm <= 20:
        raise PetbindError(f"--pvc-psf-fwhm {args.pvc_psf_fwhm:g}: give the scanner's "
                           "resolution in mm (0 < FWHM <= 20)", EX_USAGE)
    config = read_config_file(args.config_file) if args.config_file else {}
    settings = Settings(
        bids_dir=bids_dir, output_dir=output_dir, work_dir=work_dir,
        analysis_level=args.analysis_level, participant_labels=args.participant_label,
        session_labels=args.session_label, tracers=args.tracer, bids_filters=filters,
        nprocs=max(1, args.nprocs), omp_nthreads=max(1, args.omp_nthreads), mem_gb=args.mem,
        skip_bids_validation=args.skip_bids_validation, skull_strip_t1w=args.skull_strip_t1w,
        stop_on_first_crash=args.stop_on_first_crash, plugin=args.plugin,
        plugin_args=plugin_args, seed=args.seed,
        smoothing_fwhm_mm=args.smoothing_fwhm if args.smoothing_fwhm is not None else
        float(config.get("smoothing_fwhm", 8.0)),
        n_bases=int(config.get("n_bases", 300)), pvc_psf_fwhm_mm=args.pvc_psf_fwhm,
        verbosity=-1 if args.quiet else args.verbose,
        tracer_overrides={k.lower(): v for k, v in config.get("tracers", {}).items()})
    return settings


def set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[var] = str(n)
    os.environ.setdefault("NIPYPE_NO_ET", "1")


def say(settings: Settings, message: str, level: int = 0) -> None:
    if settings.verbosity >= level:
        print(f"petbind: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    set_threads(settings.omp_nthreads)
    if args.analysis_level == "group":
        from bids_app.group import run_group
        return run_group(settings, args)
    return run_participant(settings)


def run_participant(settings: Settings) -> int:
    from bids_app.bids import check_dataset, check_scan, find_scans, validate_or_fail
    from bids_app.derivatives import init_output_dataset

    check_dataset(settings.bids_dir)
    if not settings.skip_bids_validation:
        say(settings, "validating the input with bids-validator-deno")
        validate_or_fail(settings.bids_dir)
    scans = find_scans(settings)
    for scan in scans:
        check_scan(scan, settings)
    say(settings, f"{len(scans)} scan(s) to process: " + ", ".join(s.name for s in scans))
    try:
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        init_output_dataset(settings.output_dir, settings.bids_dir)
        (settings.work_dir / "petbind_config.json").write_text(settings.to_json())
    except OSError as err:
        raise PetbindError(f"{err.filename}: cannot write ({err.strerror}); choose a writable "
                           "output/work directory", EX_CANTCREAT) from None
    return execute(settings, scans)


def configure_nipype(settings: Settings, crash_dir: Path) -> None:
    from nipype import config, logging as nlogging

    config.update_config({
        "execution": {"crashdump_dir": str(crash_dir), "crashfile_format": "txt",
                      "stop_on_first_crash": settings.stop_on_first_crash,
                      "remove_unnecessary_outputs": False, "hash_method": "content",
                      "check_version": False},
        "monitoring": {"enabled": False}})
    config.update_config({"logging": {"workflow_level": "INFO", "interface_level": "WARNING"}})
    nlogging.update_logging(config)
    # nipype's own console handler shows INFO only with -v; our progress handler counts nodes
    console = logging.INFO if settings.verbosity >= 1 else logging.WARNING
    for handler in logging.getLogger("nipype").handlers:
        handler.setLevel(console)


def execute(settings: Settings, scans) -> int:
    from workflows.base import init_petbind_wf

    crash_dir = settings.output_dir / "logs"
    crash_dir.mkdir(parents=True, exist_ok=True)
    configure_nipype(settings, crash_dir)
    before = set(crash_dir.glob("crash-*"))
    # one folder of the work dir per petbind version: a work dir reused after an upgrade must
    # not hand back results computed by the old code (nipype hashes node inputs, not the code)
    workflow = init_petbind_wf(scans, settings, name=workflow_name())
    plugin_args = dict(settings.plugin_args)
    if settings.plugin == "MultiProc":
        plugin_args.setdefault("n_procs", settings.nprocs)
        if settings.mem_gb:
            plugin_args.setdefault("memory_gb", settings.mem_gb)
    n_nodes = len(workflow._get_all_nodes())
    say(settings, f"running {n_nodes} nodes with the {settings.plugin} plugin; work dir "
        f"{settings.work_dir}")
    start = time.time()
    failed_run = None
    if settings.verbosity >= 0 and not settings.plugin.endswith("Graph"):
        plugin_args["status_callback"] = Progress(n_nodes, settings)
    try:
        workflow.run(plugin=settings.plugin, plugin_args=plugin_args)
    except Exception as err:  # nipype raises RuntimeError when nodes crashed
        failed_run = err
    crashes = sorted(set(crash_dir.glob("crash-*")) - before)
    return summarise(settings, scans, crashes, failed_run, time.time() - start)


def workflow_name() -> str:
    from bids_app import __version__
    return "petbind_" + "".join(c if c.isalnum() else "_" for c in __version__) + "_wf"


class Progress:
    """nipype's status callback: called in the scheduling process (whatever the plugin's
    workers are) when a node starts, ends or fails, so the count is the whole graph's."""

    def __init__(self, total: int, settings: Settings) -> None:
        self.total, self.done, self.settings = total, 0, settings

    def __call__(self, node, status: str) -> None:
        name = node.fullname.removeprefix(workflow_name() + ".")
        if status == "end":
            self.done += 1
            say(self.settings, f"[{self.done}/{self.total}] done: {name}")
        elif status == "start":
            say(self.settings, f"running: {name}")
        elif status == "exception":
            say(self.settings, f"failed: {name} (crash file in the logs folder)")


def summarise(settings: Settings, scans, crashes, failed_run, seconds: float) -> int:
    from bids_app.derivatives import scan_dir

    ok, bad = [], []
    for scan in scans:
        out = scan_dir(settings.output_dir, scan.subject, scan.session, "pet")
        done = (out / f"{scan.name}_space-MNI152NLin2009cAsym_model-SRTM_meas-BPND_mimap"
                ".nii.gz").exists() and (settings.output_dir / f"{scan.name}.html").exists()
        mine = [c for c in crashes if scan.ident in c.name or f"sub{scan.subject}" in c.name]
        (bad if (not done or (mine and failed_run)) else ok).append((scan, mine))
    say(settings, f"finished in {seconds / 60:.1f} min: {len(ok)} scan(s) succeeded, "
        f"{len(bad)} failed", level=-1 if bad else 0)
    for scan, _ in ok:
        say(settings, f"  ok      {scan.name} (report: {settings.output_dir / (scan.name + '.html')})")
    for scan, mine in bad:
        where = ", ".join(str(c) for c in mine) or f"see {settings.output_dir / 'logs'}"
        say(settings, f"  FAILED  {scan.name} (crash file: {where})", level=-1)
    if failed_run is not None and not bad:
        say(settings, f"  nipype reported: {failed_run}", level=-1)
        return EX_FAILURE
    return EX_FAILURE if bad else 0


def entry() -> None:
    sys.exit(run_cli("petbind", main))


if __name__ == "__main__":
    entry()
