"""Faults and repeatability of the participant level (issue 7): a run killed mid-way and
restarted with its work dir finishes with the outputs of an uninterrupted run and redoes only
what was unfinished; two runs on different participants into one output dir do not clobber each
other; the same input and settings give byte-identical outputs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bids_app.cli.common import run_cli
from bids_app.cli.simulate import main as simulate_main
from conftest import tree_digest

# files whose bytes are compared between runs: everything petbind writes except the HTML
# reports, which name their run's work and output folders
COMPARED = ("*.nii.gz", "*.tsv", "*.json", ".bidsignore")


def petbind(ds, out, work, *extra):
    return [sys.executable, "-m", "bids_app.cli.run", str(ds), str(out), "participant", "-w",
            str(work), "--skip-bids-validation", *extra]


def outputs(out: Path) -> dict[str, bytes]:
    files = {p for pattern in COMPARED for p in out.rglob(pattern) if p.is_file()}
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(files)}


def wait_for(paths_glob: str, root: Path, proc: subprocess.Popen, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        if any(root.rglob(paths_glob)):
            return True
        time.sleep(0.5)
    return False


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    ds = root / "ds"
    # brain-extracted T1w (the skull-strip step is tested elsewhere): keeps the module short
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "2", "--voxel-size", "4", "--t1-voxel-size", "3",
        "--skull-stripped", "--seed", "21", "-q"]) == 0
    before = tree_digest(ds)
    # the reference: sub-01 uninterrupted, its nodes in two processes
    ref = subprocess.run(petbind(ds, root / "ref", root / "work_ref", "--nprocs", "2",
                                 "--participant-label", "01"),
                         capture_output=True, text=True, timeout=1800)
    assert ref.returncode == 0, ref.stderr[-3000:]

    # two runs on different participants into one output dir, at the same time; the first is
    # killed (SIGKILL, whole process group) once its normalisation has finished, then restarted
    shared, work_a, work_b = root / "shared", root / "work_a", root / "work_b"
    run_b = subprocess.Popen(petbind(ds, shared, work_b, "--participant-label", "02"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_a = subprocess.Popen(petbind(ds, shared, work_a, "--participant-label", "01"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    reached = wait_for("result_normalise.pklz", work_a, run_a, timeout_s=1800)
    os.killpg(run_a.pid, signal.SIGKILL)
    run_a.wait()
    finished = {p: p.stat().st_mtime_ns for p in work_a.rglob("result_*.pklz")}
    after_kill = sorted(str(p.relative_to(shared)) for p in shared.rglob("sub-01*"))
    restart = subprocess.run(petbind(ds, shared, work_a, "--participant-label", "01"),
                             capture_output=True, text=True, timeout=1800)
    b_err = run_b.communicate(timeout=1800)[1]
    return {"ds": ds, "before": before, "ref": root / "ref", "shared": shared,
            "reached": reached, "finished": finished, "after_kill": after_kill,
            "restart": restart, "work_a": work_a, "b_code": run_b.returncode, "b_err": b_err}


def test_killed_run_restarts_and_redoes_only_the_unfinished(runs):
    assert runs["reached"], "the run ended before it could be killed mid-way"
    assert runs["after_kill"] == []           # nothing of the killed scan reached the output
    assert runs["restart"].returncode == 0, runs["restart"].stderr[-3000:]
    finished = runs["finished"]
    assert any("normalise" in str(p) for p in finished)
    # every node that had finished before the kill was reused, not recomputed
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    # and the rest was done: the restarted run has more finished nodes than the killed one
    assert len(list(runs["work_a"].rglob("result_*.pklz"))) > len(finished)


def test_concurrent_runs_into_one_output_dir_do_not_clobber(runs):
    assert runs["b_code"] == 0, runs["b_err"][-3000:]
    shared = runs["shared"]
    description = json.loads((shared / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    for sub in ("01", "02"):
        assert list((shared / f"sub-{sub}" / "pet").glob("*_meas-BPND_mimap.nii.gz"))
    # no temporary files of the atomic writes are left behind
    assert not [p for p in shared.rglob("*") if ".tmp" in p.name or p.name.startswith(".#")]


def test_same_input_and_settings_give_identical_outputs(runs):
    # the reference ran sub-01 uninterrupted in two processes (its own work dir); the other
    # run of sub-01 was killed and resumed, beside sub-02's run into the same folder: every
    # output byte of sub-01 and of the shared files is the same
    ref = outputs(runs["ref"])
    other = {name: data for name, data in outputs(runs["shared"]).items()
             if "sub-02" not in name}
    assert any("sub-01" in name for name in ref) and sorted(ref) == sorted(other)
    differ = [name for name in ref if ref[name] != other[name]]
    assert differ == []


def test_input_dataset_is_untouched(runs):
    assert tree_digest(runs["ds"]) == runs["before"]
