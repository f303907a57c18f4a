"""A battery of bad inputs: each gives one line naming the file (and the fix) and the exit code
of the BIDS execution spec (64 usage, 65 bad data, 66 missing input, 73 cannot create output),
before any processing."""

import gzip
import json
import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app.cli.common import run_cli
from bids_app.cli.run import main as petbind_main

FRAMES = {"FrameTimesStart": [0, 60, 120, 180, 360, 720],
          "FrameDuration": [60, 60, 60, 180, 360, 360]}


def make_dataset(root, n_subjects=2):
    """A tiny valid-looking BIDS PET dataset (8-voxel cubes; no processing happens)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "tiny", "BIDSVersion": "1.10.0"}))
    rows = []
    rng = np.random.default_rng(0)
    for i in range(1, n_subjects + 1):
        sub = f"sub-{i:02d}"
        (root / sub / "pet").mkdir(parents=True)
        (root / sub / "anat").mkdir(parents=True)
        pet = rng.uniform(100, 1000, (8, 8, 8, 6)).astype(np.float32)
        nib.save(nib.Nifti1Image(pet, np.diag([2.0, 2, 2, 1])),
                 root / sub / "pet" / f"{sub}_trc-carfentanil_pet.nii.gz")
        (root / sub / "pet" / f"{sub}_trc-carfentanil_pet.json").write_text(json.dumps({
            "TracerName": "carfentanil", "TracerRadionuclide": "C11", "Units": "Bq/mL",
            "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 0, **FRAMES}))
        nib.save(nib.Nifti1Image(rng.uniform(0, 100, (8, 8, 8)).astype(np.float32),
                                 np.eye(4)), root / sub / "anat" / f"{sub}_T1w.nii.gz")
        rows.append({"participant_id": sub, "group": "a" if i % 2 else "b", "age": 30 + i})
    pd.DataFrame(rows).to_csv(root / "participants.tsv", sep="\t", index=False)
    return root


def sidecar(ds, sub="sub-01"):
    return ds / sub / "pet" / f"{sub}_trc-carfentanil_pet.json"


def pet(ds, sub="sub-01"):
    return ds / sub / "pet" / f"{sub}_trc-carfentanil_pet.nii.gz"


def edit_sidecar(ds, **changes):
    meta = json.loads(sidecar(ds).read_text())
    for k, v in changes.items():
        if v is None:
            meta.pop(k, None)
        else:
            meta[k] = v
    sidecar(ds).write_text(json.dumps(meta))


def replace_pet(ds, data, affine=None):
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.diag([2.0, 2, 2, 1])
                             if affine is None else affine), pet(ds))


def save_nan_sform(path):
    """A T1w whose sform holds NaN (a broken header): patched in the bytes, as nibabel refuses
    to write such an affine."""
    raw = path.with_suffix("").with_suffix(".tmp.nii")
    img = nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4))
    img.header.set_sform(np.eye(4), code=1)
    nib.save(img, raw)
    data = bytearray(raw.read_bytes())
    data[280:284] = np.array([np.nan], dtype="<f4").tobytes()      # srow_x[0]
    raw.unlink()
    path.write_bytes(gzip.compress(bytes(data), mtime=0))


def t1w(ds):
    return ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz"


CASES = {
    "no dataset_description": (lambda ds: (ds / "dataset_description.json").unlink(),
                               65, "dataset_description.json"),
    "no PET": (lambda ds: [p.unlink() for p in ds.rglob("*_pet.*")], 66, "no PET scan"),
    "PET is 3D": (lambda ds: replace_pet(ds, np.ones((8, 8, 8))), 65, "must be 4D"),
    "no FrameTimesStart": (lambda ds: edit_sidecar(ds, FrameTimesStart=None), 65,
                           "no FrameTimesStart"),
    "no FrameDuration": (lambda ds: edit_sidecar(ds, FrameDuration=None), 65,
                         "no FrameDuration"),
    "lengths disagree with the image": (lambda ds: edit_sidecar(
        ds, FrameTimesStart=FRAMES["FrameTimesStart"][:5],
        FrameDuration=FRAMES["FrameDuration"][:5]), 65, "image has 6 frames"),
    "lengths disagree with each other": (lambda ds: edit_sidecar(
        ds, FrameDuration=FRAMES["FrameDuration"][:5]), 65, "has 6 values but"),
    "frames overlap": (lambda ds: edit_sidecar(
        ds, FrameTimesStart=[0, 30, 120, 180, 360, 720]), 65, "frames overlap"),
    "frames go backwards": (lambda ds: edit_sidecar(
        ds, FrameTimesStart=[0, 120, 60, 180, 360, 720]), 65, "go backwards"),
    "zero duration": (lambda ds: edit_sidecar(ds, FrameDuration=[60, 0, 60, 180, 360, 360]),
                      65, "must be > 0"),
    "negative duration": (lambda ds: edit_sidecar(
        ds, FrameDuration=[60, -60, 60, 180, 360, 360]), 65, "must be > 0"),
    "milliseconds": (lambda ds: edit_sidecar(
        ds, FrameTimesStart=[t * 1000 for t in FRAMES["FrameTimesStart"]],
        FrameDuration=[d * 1000 for d in FRAMES["FrameDuration"]]), 65, "milliseconds"),
    "first frame of 3600 s": (lambda ds: edit_sidecar(
        ds, FrameTimesStart=[0, 3600, 3660, 3720, 3900, 4260],
        FrameDuration=[3600, 60, 60, 180, 360, 360]), 65, "static or summed"),
    "unknown radionuclide": (lambda ds: edit_sidecar(ds, TracerRadionuclide="Xx99"), 65,
                             "TracerRadionuclide"),
    # the decay constant of the sidecar's radionuclide corrects the data, the tracer's shifts
    # the theta3 range: they must agree
    "radionuclide disagrees with the tracer": (lambda ds: edit_sidecar(
        ds, TracerRadionuclide="F18"), 65, "carfentanil is labelled with C11"),
    # "false" as a string would be read as true: decay correction skipped, BPND biased
    "decay state as a string": (lambda ds: edit_sidecar(ds, ImageDecayCorrected="false"), 65,
                                "must be true or false"),
    "frame times as strings": (lambda ds: edit_sidecar(
        ds, FrameDuration=[str(d) for d in FRAMES["FrameDuration"]]), 65,
        "must be a list of numbers"),
    "NaN frame": (lambda ds: replace_pet(ds, np.concatenate(
        [np.ones((8, 8, 8, 5)), np.full((8, 8, 8, 1), np.nan)], axis=3)), 65, "frame 5"),
    "all-zero frame": (lambda ds: replace_pet(ds, np.concatenate(
        [np.zeros((8, 8, 8, 1)), np.ones((8, 8, 8, 5))], axis=3)), 65, "frame 0"),
    "T1w missing": (lambda ds: t1w(ds).unlink(), 66, "no T1w"),
    "T1w is 4D": (lambda ds: nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 3), np.float32),
                                                      np.eye(4)), t1w(ds)), 65, "must be 3D"),
    "sheared PET affine": (lambda ds: replace_pet(ds, np.ones((8, 8, 8, 6)), np.array(
        [[2.0, 1, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])), 65, "non-orthogonal"),
    "broken T1w affine": (lambda ds: save_nan_sform(t1w(ds)), 65, "broken affine"),
    "truncated gzip": (lambda ds: pet(ds).write_bytes(pet(ds).read_bytes()[:2000]), 65,
                       "cannot read"),
    "JSON not parseable": (lambda ds: sidecar(ds).write_text("{not json"), 65,
                           "not valid JSON"),
    # a file holding only a NIfTI header: readable header, no voxels
    "PET header only": (lambda ds: pet(ds).write_bytes(gzip.compress(
        nib.Nifti1Image(np.ones((8, 8, 8, 6), np.float32), np.diag([2.0, 2, 2, 1]))
        .header.binaryblock + b"\0" * 4, mtime=0)), 65, "cannot read the PET image's voxels"),
    "T1w all NaN": (lambda ds: nib.save(nib.Nifti1Image(np.full((8, 8, 8), np.nan, np.float32),
                                                        np.eye(4)), t1w(ds)), 65,
                    "NaN or infinite values"),
    "T1w one value": (lambda ds: nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32),
                                                          np.eye(4)), t1w(ds)), 65,
                      "one value everywhere"),
    # one corrupted voxel: every model would return nonsense from it
    "absurd PET voxel": (lambda ds: replace_pet(ds, np.where(
        np.arange(8 * 8 * 8 * 6).reshape(8, 8, 8, 6) == 100, 1e30,
        np.random.default_rng(1).uniform(100, 1000, (8, 8, 8, 6)))), 65, "over 1000 times"),
    "no trc- entity and no usable TracerName": (lambda ds: [
        edit_sidecar(ds, TracerName="[11C]$$"),
        [p.rename(p.with_name(p.name.replace("_trc-carfentanil", "")))
         for p in (ds / "sub-01" / "pet").iterdir()]], 65, "no usable TracerName"),
    "duplicate scans without run": (lambda ds: [
        (ds / "sub-01" / "pet" / "sub-01_trc-carfentanil_rec-b_pet.nii.gz").write_bytes(
            pet(ds).read_bytes()),
        (ds / "sub-01" / "pet" / "sub-01_trc-carfentanil_rec-b_pet.json").write_text(
            sidecar(ds).read_text())], 65, "run- entity"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_participant_input(case, tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    mutate, code, message = CASES[case]
    mutate(ds)
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    argv = [str(ds), str(tmp_path / "out"), "participant", "--skip-bids-validation", "-w",
            str(tmp_path / "work")]
    assert run_cli("petbind", petbind_main, argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert len(err.splitlines()) == 1, err
    assert str(tmp_path) in err or "carfentanil" in err          # names the file
    made = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert not [p for p in made if not p.is_relative_to(tmp_path / "out")
                and not p.is_relative_to(tmp_path / "work")], made   # nothing outside


def config(tmp_path, content) -> list[str]:
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return ["--config-file", str(path)]


def filters(tmp_path, content) -> list[str]:
    path = tmp_path / "filters.json"
    path.write_text(json.dumps(content))
    return ["--bids-filter-file", str(path)]


CARFENTANIL = {"reference_region": "occipital", "theta3_range": [0.06, 0.6],
               "radionuclide": "C11"}
OPTION_CASES = {
    "config file is binary": (lambda t: config(t, b"\x89PNG\x00\xff\xfe"), 65, "not a text"),
    "config: n_bases not a number": (lambda t: config(t, {"n_bases": "many"}), 65,
                                     "n_bases must be a number"),
    "config: n_bases 0": (lambda t: config(t, {"n_bases": 0}), 64, "n_bases 0"),
    "config: smoothing negative": (lambda t: config(t, {"smoothing_fwhm": -3}), 64,
                                   "smoothing FWHM -3"),
    "config: unknown reference region": (lambda t: config(t, {"tracers": {"carfentanil": {
        "reference_region": "nowhere"}}}), 65, "reference_region 'nowhere'"),
    "config: theta3 range reversed": (lambda t: config(t, {"tracers": {"carfentanil": {
        "theta3_range": [0.6, 0.06]}}}), 65, "0 < LO < HI"),
    "config: tracers a list": (lambda t: config(t, {"tracers": []}), 65,
                               '"tracers" must be an object'),
    "config: tracer a list": (lambda t: config(t, {"tracers": {"x": []}}), 65,
                              "must be an object"),
    "config: tracer name without letters": (lambda t: config(t, {"tracers": {
        "$$": CARFENTANIL}}), 65, "needs letters or digits"),
    "config: unknown radionuclide": (lambda t: config(t, {"tracers": {"carfentanil": {
        "radionuclide": "Xx99"}}}), 65, "unknown radionuclide"),
    "filter file a list": (lambda t: filters(t, [1, 2]), 65, "must be an object with the keys"),
    "filter file a string": (lambda t: filters(t, "pet"), 65, "must be an object with the keys"),
    "filter: unknown entity": (lambda t: filters(t, {"pet": {"flavour": "x"}}), 65,
                               "cannot select on 'flavour'"),
    "filter: overrides the suffix": (lambda t: filters(t, {"pet": {"suffix": "T1w"}}), 65,
                                     "cannot select on 'suffix'"),
    "filter: a value is an object": (lambda t: filters(t, {"pet": {"session": {"a": 1}}}), 65,
                                     "must be a label"),
    "plugin args a list": (lambda t: ["--plugin-args", "[1]"], 64, "must be a JSON object"),
    "plugin unknown": (lambda t: ["--plugin", "Bogus"], 64, "--plugin 'Bogus'"),
    "memory below the largest step": (lambda t: ["--mem", "1"], 64, "--mem 1"),
    "no processes": (lambda t: ["--nprocs", "0"], 64, "--nprocs 0"),
    "threads beyond processes": (lambda t: ["--omp-nthreads", "4", "--nprocs", "2"], 64,
                                 "--nprocs 2"),
    "smoothing negative": (lambda t: ["--smoothing-fwhm", "-1"], 64, "smoothing FWHM -1"),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_bad_participant_options(case, tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    options, code, message = OPTION_CASES[case]
    argv = [str(ds), str(tmp_path / "out"), "participant", "--skip-bids-validation",
            "-w", str(tmp_path / "work"), *options(tmp_path)]
    assert run_cli("petbind", petbind_main, argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    # nothing was processed and nothing written outside the output and work folders
    assert not (tmp_path / "out" / "sub-01").exists()
    made = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()}
    assert made <= {"ds", "out", "work", "config.json", "filters.json"}, made


def test_a_pet_file_without_trc_is_named_by_its_tracer_name(tmp_path):
    # "[11C]Carfentanil" in TracerName, no trc- in the file name: the scan is carfentanil, its
    # derivatives named trc-carfentanil (the name from the sidecar is mapped to a label)
    from bids_app.bids import check_scan, find_scans
    from bids_app.cli.parser import build_parser
    from bids_app.cli.run import config_from_args
    ds = make_dataset(tmp_path / "ds", n_subjects=1)
    edit_sidecar(ds, TracerName="[11C]Carfentanil")
    for p in (ds / "sub-01" / "pet").iterdir():
        p.rename(p.with_name(p.name.replace("_trc-carfentanil", "")))
    cfg = config_from_args(build_parser().parse_args(
        [str(ds), str(tmp_path / "out"), "participant"]))
    scans = find_scans(cfg.run)
    check_scan(scans[0], cfg.participant)
    assert scans[0].name == "sub-01_trc-carfentanil" and scans[0].metadata.radionuclide == "C11"


def test_every_built_in_tracer_has_a_reference_region_in_the_atlas():
    # flumazenil's pons: the atlas has one brainstem label; its pons part must be found
    from bids_app.config import ParticipantConfig
    from bids_app.tracers import TRACERS
    from workflows.imaging.atlas import load_atlas
    from workflows.imaging.masks import PONS_Z_MM, reference_region_mni
    for name in TRACERS:
        mask = reference_region_mni(ParticipantConfig().tracer(name).reference_region)
        assert mask.sum() > 1000, name                         # over 3 mL at 1.5 mm
    pons = np.argwhere(reference_region_mni("pons"))
    z = (pons @ load_atlas().affine[:3, :3].T + load_atlas().affine[:3, 3])[:, 2]
    assert PONS_Z_MM[0] < z.min() and z.max() < PONS_Z_MM[1]


def test_unknown_tracer_without_theta3_range(tmp_path, capsys):
    ds = make_dataset(tmp_path / "ds")
    for p in ds.rglob("*trc-carfentanil*"):
        p.rename(p.with_name(p.name.replace("carfentanil", "newligand")))
    argv = [str(ds), str(tmp_path / "out"), "participant", "--skip-bids-validation"]
    assert run_cli("petbind", petbind_main, argv) == 65
    err = capsys.readouterr().err
    assert "unknown tracer 'newligand'" in err and "--config-file" in err


def test_output_dir_not_writable(tmp_path, capsys):
    if os.geteuid() == 0:
        out = "/proc/petbind-out"                    # root can write anywhere but /proc
    else:
        out = str(tmp_path / "ro" / "out")
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
    ds = make_dataset(tmp_path / "ds")
    code = run_cli("petbind", petbind_main, [str(ds), out, "participant",
                                             "--skip-bids-validation", "-w",
                                             str(tmp_path / "work")])
    assert code == 73
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("mutate,code,message", [
    (lambda ds: (ds / "participants.tsv").unlink(), 66, "participants.tsv: missing"),
    (lambda ds: pd.read_csv(ds / "participants.tsv", sep="\t").drop(columns="group").to_csv(
        ds / "participants.tsv", sep="\t", index=False), 64, "--group-column"),
])
def test_bad_group_input(tmp_path, capsys, mutate, code, message):
    ds = make_dataset(tmp_path / "ds")
    mutate(ds)
    (tmp_path / "out").mkdir()
    argv = [str(ds), str(tmp_path / "out"), "group", "--group-column", "group"] \
        if code == 66 else [str(ds), str(tmp_path / "out"), "group"]
    assert run_cli("petbind", petbind_main, argv) == code
    assert message in capsys.readouterr().err


def test_group_with_a_single_member_is_refused(tmp_path, capsys):
    # the group level needs every group to have at least 2 participants with maps
    from bids_app.cli.simulate import main as simulate_main
    ds = tmp_path / "ds"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--groups", "a=3,b=1", "--derivatives-only", "-q"]) == 0
    code = run_cli("petbind", petbind_main, [str(ds), str(ds / "derivatives" / "petbind"),
                                             "group", "--n-permutations", "10"])
    assert code == 65
    assert "group 'b'" in capsys.readouterr().err


def test_missing_covariate_leaves_the_participant_out_and_says_so(tmp_path):
    from bids_app.cli.simulate import main as simulate_main
    ds = tmp_path / "ds"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--groups", "a=4,b=4", "--derivatives-only", "-q"]) == 0
    table = pd.read_csv(ds / "participants.tsv", sep="\t")
    table.loc[0, "age"] = np.nan
    table.to_csv(ds / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    out = ds / "derivatives" / "petbind"
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", "--n-permutations",
                                             "10", "-q"]) == 0
    left = pd.read_csv(out / "group" / "trc-carfentanil_desc-leftout_participants.tsv",
                       sep="\t")
    assert list(left["participant_id"]) == ["sub-01"]
    assert "age" in left["reason"][0]
