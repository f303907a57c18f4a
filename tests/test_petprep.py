"""PETPrep derivatives as input (``--derivatives``): regional TACs in PETPrep's layout, times
from TimeZero with injection later, give the true BPND with every model of the family; bad
input is refused scan by scan with one line; and the group level runs on regional fits alone."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bids_app.cli.common import run_cli
from bids_app.cli.run import main as petbind_main
from bids_app.tracers import FREESURFER_REFERENCE
from conftest import K1_REF, K2_REF, reference_parameters, tree_digest
from workflows.kinetics.compartments import TissueParameters, simulate_frames
from workflows.kinetics.frames import SEED_PROTOCOLS, FrameTiming, decay_constant_per_s

# true BPND of the target regions (FreeSurfer names, as in PETPrep's gtm segmentation)
TRUTH = {"Left-Putamen": 2.0, "Right-Thalamus": 1.5, "ctx-lh-insula": 1.0,
         "Left-Amygdala": 0.5}
REFERENCE = FREESURFER_REFERENCE["occipital"]         # carfentanil's reference, by default
INJECTION_S = 60.0                                    # injection 60 s after TimeZero
MODELS = ("SRTM", "SRTM2", "MRTM2", "LoganRef")


def truth_tacs(timing: FrameTiming, bpnd: dict[str, float]) -> dict[str, np.ndarray]:
    """Noise-free frame means (decay-corrected to injection) of the reference and of targets
    with fast exchange between free and bound (k4 1 /min: SRTM's assumption nearly holds)."""
    ref = simulate_frames(timing, reference_parameters())[0]
    params = TissueParameters.from_srtm(K1_REF, K2_REF, np.ones(len(bpnd)),
                                        list(bpnd.values()), 1.0)
    return {"reference": ref, **dict(zip(bpnd, simulate_frames(timing, params)))}


def write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def petprep_dataset(root: Path, subjects=("01",), bpnd=TRUTH, scans: dict | None = None,
                    participants: dict | None = None, pvc: bool = True) -> dict:
    """A BIDS dataset without images and its PETPrep derivatives: per scan a raw sidecar
    (TimeZero 60 s before injection; the first frame began at TimeZero) and the regional
    TACs in PETPrep's names, decay-corrected to TimeZero, with a partial-volume-corrected
    copy, a _morph.tsv, a ventricle, and a region with a missing (n/a) value. ``scans``:
    (subject, session) -> true BPND per region, instead of ``subjects`` with ``bpnd``."""
    bids, deriv = root / "bids", root / "bids" / "derivatives" / "petprep"
    write_json(bids / "dataset_description.json", {"Name": "t", "BIDSVersion": "1.10.0"})
    write_json(deriv / "dataset_description.json", {
        "Name": "PETPrep - PET PREProcessing workflow", "DatasetType": "derivative",
        "BIDSVersion": "1.4.0", "GeneratedBy": [{"Name": "PETPrep", "Version": "0.0.3"}]})
    scans = scans or {(sub, None): bpnd for sub in subjects}
    subs = sorted({sub for sub, _ in scans})
    pd.DataFrame({"participant_id": [f"sub-{s}" for s in subs], **(participants or {})}).to_csv(
        bids / "participants.tsv", sep="\t", index=False)
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS["carfentanil"])    # from injection
    for (sub, ses), truth in scans.items():
        tacs = write_scan(bids, deriv, sub, ses, timing, truth, pvc)
    return {"bids": bids, "deriv": deriv, "timing": timing, "tacs": tacs}


def write_scan(bids: Path, deriv: Path, sub: str, ses: str | None, timing: FrameTiming,
               bpnd: dict[str, float], pvc: bool = True) -> dict[str, np.ndarray]:
    """One scan's raw sidecar and PETPrep TACs (see :func:`petprep_dataset`); returns the
    true TACs."""
    tacs = truth_tacs(timing, bpnd)
    start = timing.start_s + INJECTION_S
    start[0] = 0.0                                  # the first frame began before injection
    end = timing.end_s + INJECTION_S
    before = (end[0] - start[0] - timing.duration_s[0]) / (end[0] - start[0])
    to_timezero = math.exp(decay_constant_per_s("C11") * INJECTION_S)
    table = {"frame_start": start, "frame_end": end}
    for label in REFERENCE:
        table[label] = tacs["reference"]
    table.update({name: tacs[name] for name in bpnd})
    frame = pd.DataFrame(table)
    values = frame.columns[2:]
    frame[values] = frame[values] * to_timezero
    frame.loc[0, values] = frame.loc[0, values] * (1 - before)     # no activity before injection
    frame["Left-Lateral-Ventricle"] = frame[REFERENCE[0]] * 0.3    # fluid: not fitted
    frame["ctx-rh-insula"] = frame["ctx-lh-insula"]
    text = frame.astype(object)
    text.loc[5, "ctx-rh-insula"] = "n/a"
    stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
    folder = Path(f"sub-{sub}") / (f"ses-{ses}" if ses else "")
    write_json(bids / folder / "pet" / f"{stem}_pet.json", {
        "TracerName": "[11C]carfentanil", "TracerRadionuclide": "C11",
        "FrameTimesStart": list(start), "FrameDuration": list(end - start),
        "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 0, "TimeZero": "10:00:00",
        "ScanStart": 0, "InjectionStart": INJECTION_S, "Units": "Bq/mL"})
    pet = deriv / folder / "pet"
    pet.mkdir(parents=True)
    for label in ("", "_pvc-GTM") if pvc else ("",):
        text.to_csv(pet / f"{stem}_desc-preproc_seg-gtm{label}_tacs.tsv", sep="\t",
                    index=False, float_format="%.10g")
    anat = deriv / folder / "anat"
    anat.mkdir(parents=True)
    pd.DataFrame({"index": range(len(REFERENCE)), "name": REFERENCE,
                  "volume-mm3": np.linspace(1000, 8000, len(REFERENCE))}).to_csv(
        anat / f"{stem}_desc-preproc_seg-gtm_morph.tsv", sep="\t", index=False)
    return tacs


def run_petbind(data: dict, root: Path, *extra: str) -> tuple[int, Path]:
    out = root / "out"
    code = run_cli("petbind", petbind_main, [
        str(data["bids"]), str(out), "participant", "--derivatives", str(data["deriv"]),
        "--skip-bids-validation", "-w", str(root / "work"), "--plugin", "Linear", "-q",
        *extra])
    return code, out


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    root = tmp_path_factory.mktemp("petprep")
    data = petprep_dataset(root)
    before = tree_digest(data["bids"])
    code, out = run_petbind(data, root)
    return {**data, "code": code, "out": out, "before": before}


def kinpar(out: Path, model: str, pvc: str = "") -> pd.DataFrame:
    path = out / "sub-01" / "pet" / f"sub-01_trc-carfentanil{pvc}_model-{model}_kinpar.tsv"
    return pd.read_csv(path, sep="\t").set_index("region")


def test_every_model_recovers_the_true_bpnd_from_petprep_tacs(simulated):
    assert simulated["code"] == 0
    for model in MODELS:
        for pvc in ("", "_pvc-GTM"):
            bpnd = kinpar(simulated["out"], model, pvc)["BPND"]
            for region, true in TRUTH.items():
                # noise-free two-tissue targets: within 1 % (the models' own bias is under 0.6 %)
                assert bpnd[region] == pytest.approx(true, rel=0.01), (model, region)


def test_times_count_from_injection_and_values_are_decay_corrected_to_it(simulated):
    # PETPrep counts from TimeZero; petbind's table counts from injection (InjectionStart
    # later), its first frame only the part after injection, decay-corrected to injection
    table = pd.read_csv(simulated["out"] / "sub-01" / "pet" /
                        "sub-01_trc-carfentanil_seg-gtm_tacs.tsv", sep="\t")
    timing = simulated["timing"]
    np.testing.assert_allclose(table["frame_start"], timing.start_s, atol=1e-6)
    np.testing.assert_allclose(table["frame_end"], timing.end_s, atol=1e-6)
    np.testing.assert_allclose(table["occipital"], simulated["tacs"]["reference"], rtol=1e-7)
    np.testing.assert_allclose(table["Left-Putamen"], simulated["tacs"]["Left-Putamen"],
                               rtol=1e-7)


def test_sidecars_say_where_the_tacs_came_from_and_what_was_left_out(simulated):
    side = json.loads((simulated["out"] / "sub-01" / "pet" /
                       "sub-01_trc-carfentanil_model-MRTM2_kinpar.json").read_text())
    assert side["PreprocessedBy"] == "PETPrep 0.0.3"
    assert side["ReferenceLabels"] == list(REFERENCE)
    assert side["ReferenceWeighting"].startswith("volume-weighted")
    assert side["InjectionStartS"] == INJECTION_S
    assert side["RegionsLeftOut"] == {"Left-Lateral-Ventricle": "not brain tissue",
                                      "ctx-rh-insula": "n/a values"}
    assert "K2PrimeSource" in side and side["K2Prime"] > 0
    assert not {"Left-Lateral-Ventricle", "ctx-rh-insula"} & set(kinpar(simulated["out"],
                                                                        "SRTM").index)
    qc = pd.read_csv(simulated["out"] / "sub-01" / "pet" / "sub-01_trc-carfentanil_qc.tsv",
                     sep="\t").set_index("metric")
    assert qc.loc["regions_on_bound_fraction", "value"] == 0            # noise-free: none
    assert not qc["flagged"].any()
    assert tree_digest(simulated["bids"]) == simulated["before"]      # input untouched


def test_each_tac_scan_has_a_report_of_its_source_and_every_models_bpnd(simulated):
    # what a reader checks in seconds: which table, which reference labels, the time shift and
    # what was left out; the TACs with their fits (a figure), and BPND of every model per region
    report = (simulated["out"] / "sub-01_trc-carfentanil.html").read_text()
    assert "sub-01_desc-preproc_seg-gtm_tacs.tsv" in report and "PETPrep 0.0.3" in report
    assert all(label in report for label in REFERENCE) and "InjectionStart 60 s" in report
    assert "Left-Lateral-Ventricle (not brain tissue)" in report
    assert "ctx-rh-insula (n/a values)" in report
    assert (simulated["out"] / "figures" / "sub-01" / "sub-01_trc-carfentanil_tacs.png").is_file()
    table = report.split("BPND by model")[1].split("Quality control")[0]
    assert all(f"<th>{model}</th>" in table for model in MODELS)
    for model in MODELS:                          # the table shows the fits' values
        for region in TRUTH:
            assert f"{kinpar(simulated['out'], model).loc[region, 'BPND']:.3f}" in table


def test_a_scan_with_only_corrected_tacs_still_gets_its_report(tmp_path):
    # PETPrep's partial-volume-corrected table alone: fitted, and the report follows it
    data = petprep_dataset(tmp_path)
    (data["deriv"] / "sub-01" / "pet" / "sub-01_desc-preproc_seg-gtm_tacs.tsv").unlink()
    code, out = run_petbind(data, tmp_path)
    assert code == 0
    report = (out / "sub-01_trc-carfentanil.html").read_text()
    assert "sub-01_desc-preproc_seg-gtm_pvc-GTM_tacs.tsv" in report
    assert kinpar(out, "SRTM", "_pvc-GTM")["BPND"]["Left-Putamen"] == pytest.approx(2.0, rel=0.01)


def test_the_reference_is_the_volume_weighted_mean_of_its_labels(tmp_path):
    from workflows.imaging.tacs import prepare_regional_tacs
    from workflows.kinetics.metadata import PETMetadata

    timing = FrameTiming.from_protocol([(4, 60)])
    path = tmp_path / "t.tsv"
    pd.DataFrame({"frame_start": timing.start_s, "frame_end": timing.end_s, "A": 1.0,
                  "B": 3.0, "C": 5.0}).to_csv(path, sep="\t", index=False)
    meta = PETMetadata(timing, "C11", True, 0.0).as_record()
    table = {"path": str(path), "metadata": meta, "regions": ["C"], "first_frame": 0,
             "first_frame_scale": 1.0}
    out = pd.read_csv(prepare_regional_tacs(table, {"name": "ref", "labels": ["A", "B"],
                                                    "weights": [3.0, 1.0]}, str(tmp_path)),
                      sep="\t")
    np.testing.assert_allclose(out["ref"], (3 * 1.0 + 1 * 3.0) / 4)      # 1.5, not 2
    assert list(out.columns) == ["frame_start", "frame_end", "ref", "C"]


def test_petpreps_own_reference_tac_is_taken_when_named(tmp_path):
    # PETPrep may write the reference region's TAC as a file of its own
    # (_label-<ref>_desc-preproc_tacs.tsv); --reference-tac <ref> takes it
    data = petprep_dataset(tmp_path)
    pet = data["deriv"] / "sub-01" / "pet"
    table = pd.read_csv(pet / "sub-01_desc-preproc_seg-gtm_tacs.tsv", sep="\t")
    table[["frame_start", "frame_end", REFERENCE[0]]].rename(
        columns={REFERENCE[0]: "occipitalgm"}).to_csv(
        pet / "sub-01_label-occipitalgm_desc-preproc_tacs.tsv", sep="\t", index=False)
    for path in pet.glob("*seg-gtm*_tacs.tsv"):     # the labels themselves are gone
        pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False).drop(
            columns=list(REFERENCE)).to_csv(path, sep="\t", index=False)
    code, out = run_petbind(data, tmp_path, "--reference-tac", "occipitalgm")
    assert code == 0
    for region, true in TRUTH.items():
        assert kinpar(out, "MRTM2")["BPND"][region] == pytest.approx(true, rel=0.01)
    side = json.loads((out / "sub-01" / "pet" /
                       "sub-01_trc-carfentanil_model-MRTM2_kinpar.json").read_text())
    assert any("label-occipitalgm" in source for source in side["Sources"])


def break_scan(data: dict, sub: str, how: str) -> Path:
    """Make one subject's input bad in one way; returns the file to be named."""
    tacs = data["deriv"] / f"sub-{sub}" / "pet" / f"sub-{sub}_desc-preproc_seg-gtm_tacs.tsv"
    table = pd.read_csv(tacs, sep="\t", dtype=str, keep_default_na=False)
    if how == "frames":
        table.iloc[:-1].to_csv(tacs, sep="\t", index=False)
    elif how == "reference":
        table.drop(columns=[REFERENCE[0]]).to_csv(tacs, sep="\t", index=False)
    elif how == "all n/a":
        table.iloc[:, 2:] = "n/a"
        table.to_csv(tacs, sep="\t", index=False)
    elif how == "raw sidecar":
        (data["bids"] / f"sub-{sub}" / "pet" / f"sub-{sub}_pet.json").unlink()
    (data["deriv"] / f"sub-{sub}" / "pet" /
     f"sub-{sub}_desc-preproc_seg-gtm_pvc-GTM_tacs.tsv").unlink()
    return tacs


@pytest.mark.parametrize("how, words, exit_code", [
    ("frames", "frames but its raw sidecar", 65), ("reference", "is not in seg-gtm", 65),
    ("all n/a", "every value is n/a", 65), ("raw sidecar", "raw sidecar", 66)])
def test_a_bad_scan_is_refused_with_one_line_and_the_others_go_on(tmp_path, capsys, how,
                                                                   words, exit_code):
    data = petprep_dataset(tmp_path, subjects=("01", "02"))
    bad = break_scan(data, "02", how)
    code, out = run_petbind(data, tmp_path)
    err = capsys.readouterr().err
    assert code == exit_code, err[-2000:]
    lines = [line for line in err.splitlines() if "REFUSED sub-02" in line]
    assert len(lines) == 1 and str(bad) in lines[0] and words in lines[0], err[-2000:]
    assert kinpar(out, "SRTM").shape[0] >= len(TRUTH)                 # sub-01 went on


def test_a_derivatives_folder_without_its_description_is_refused(tmp_path, capsys):
    data = petprep_dataset(tmp_path)
    (data["deriv"] / "dataset_description.json").unlink()
    code, _ = run_petbind(data, tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 66
    assert "dataset_description.json: missing" in err[-1]


def test_a_folder_that_petprep_did_not_make_is_not_taken_for_it(tmp_path, capsys):
    data = petprep_dataset(tmp_path)
    write_json(data["deriv"] / "dataset_description.json", {
        "Name": "fMRIPrep", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "fMRIPrep", "Version": "24.0"}]})
    code, _ = run_petbind(data, tmp_path)
    assert code == 65
    assert "no PETPrep folder" in capsys.readouterr().err


def test_petpreps_normalisation_is_found_for_the_t1w_it_belongs_to(tmp_path):
    # sMRIPrep's names: the T1w's own folder first (a session's), else the subject's anat;
    # a pair only (forward and inverse); a transform of another acquisition is not taken
    from bids_app.petprep import PetprepFolder, find_transforms
    bids, deriv = tmp_path / "bids", tmp_path / "petprep"
    folders = [PetprepFolder(deriv, "0.0.3")]
    t1w = bids / "sub-01" / "ses-a" / "anat" / "sub-01_ses-a_acq-mp2_T1w.nii.gz"
    forward = "from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.h5"
    inverse = "from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5"
    assert find_transforms(folders, bids, t1w) == (None, None)
    anat = deriv / "sub-01" / "anat"
    anat.mkdir(parents=True)
    (anat / f"sub-01_acq-other_{forward}").write_bytes(b"")
    (anat / f"sub-01_acq-other_{inverse}").write_bytes(b"")
    assert find_transforms(folders, bids, t1w) == (None, None)
    (anat / f"sub-01_{forward}").write_bytes(b"")
    found, note = find_transforms(folders, bids, t1w)
    assert found is None and f"sub-01_{inverse}: missing" in note
    (anat / f"sub-01_{inverse}").write_bytes(b"")
    found, note = find_transforms(folders, bids, t1w)
    assert note is None and found == {"t1w2mni": str(anat / f"sub-01_{forward}"),
                                      "mni2t1w": str(anat / f"sub-01_{inverse}"),
                                      "source": "PETPrep 0.0.3"}
    session = deriv / "sub-01" / "ses-a" / "anat"
    session.mkdir(parents=True)
    for name in (forward, inverse):
        (session / f"sub-01_ses-a_{name}").write_bytes(b"")
    assert find_transforms(folders, bids, t1w)[0]["t1w2mni"] == \
        str(session / f"sub-01_ses-a_{forward}")


# six participants, two groups; true occupancy per participant; the second group's putamen
# binds 40 % more (the planted effect); a per-participant scale spreads BPND within groups
GROUPS = ["secure"] * 3 + ["avoidant"] * 3
OCCUPANCY = [0.3, 0.5, 0.6, 0.7, 0.8, 0.9]
SCALE = [0.9, 1.0, 1.1, 0.92, 1.0, 1.08]


def two_session_truth() -> dict:
    scans = {}
    for i, (group, occ, scale) in enumerate(zip(GROUPS, OCCUPANCY, SCALE)):
        base = {r: b * scale * (1.4 if group == "avoidant" and r == "Left-Putamen" else 1.0)
                for r, b in TRUTH.items()}
        scans[f"{i + 1:02d}", "baseline"] = base
        scans[f"{i + 1:02d}", "blocked"] = {r: b * (1 - occ) for r, b in base.items()}
    return scans


@pytest.fixture(scope="module")
def regional_only(tmp_path_factory):
    """The participant level on the two-session PETPrep layout: regional fits, no maps."""
    root = tmp_path_factory.mktemp("petprep_group")
    data = petprep_dataset(root, scans=two_session_truth(),
                           participants={"attachment": GROUPS}, pvc=False)
    code, out = run_petbind(data, root)
    assert code == 0
    assert not list(out.rglob("*_mimap.nii.gz"))
    return {**data, "out": out}


def group(data: dict, *args: str) -> int:
    return run_cli("petbind", petbind_main, [str(data["bids"]), str(data["out"]), "group",
                                              "--model", "mrtm2", "-q", *args])


def test_occupancy_from_regional_fits_alone_and_the_voxelwise_parts_listed_as_skipped(
        regional_only):
    assert group(regional_only, "--analysis", "occupancy", "--baseline-session", "baseline",
                 "--blocked-session", "blocked") == 0
    folder = regional_only["out"] / "group" / "occupancy"
    table = pd.read_csv(folder / "trc-carfentanil_desc-participant_occupancy.tsv", sep="\t")
    # noise-free: every region's BPND falls by the true occupancy
    np.testing.assert_allclose(table["occupancy"], OCCUPANCY, atol=0.02)
    assert set(table["regional_source"]) == {"regional fits"}
    settings = json.loads((folder / "trc-carfentanil_desc-settings.json").read_text())
    assert settings["Skipped"] and "voxelwise" in settings["Skipped"][0]
    assert not list(folder.glob("*.nii.gz"))
    assert "Skipped" in (folder / "trc-carfentanil_report.html").read_text()
    methods = (folder / "logs" / "CITATION.md").read_text()
    assert "no voxelwise analysis was done" in methods and "sign flips" not in methods


def test_the_group_comparison_finds_the_planted_effect_in_the_regional_fits(regional_only):
    assert group(regional_only, "--session-label", "baseline",
                 "--group-column", "attachment") == 0
    folder = regional_only["out"] / "group"
    stats = pd.read_csv(folder / "trc-carfentanil_desc-roi_stats.tsv", sep="\t")
    plain = stats[stats["model"] == "group"].set_index("region")
    assert plain.loc["Left-Putamen", "p"] < 0.01                       # 40 % planted
    assert plain.loc["ctx-lh-insula", "p"] > 0.5                       # no effect planted
    means = plain.loc["Left-Putamen"]
    assert means["mean_avoidant"] / means["mean_secure"] == pytest.approx(1.4, rel=0.03)
    settings = json.loads((folder / "trc-carfentanil_desc-settings.json").read_text())
    assert settings["ROISource"].startswith("regional fits") and settings["Skipped"]
    methods = (folder / "logs" / "CITATION.md").read_text()
    assert "no voxelwise analysis was done" in methods and "Freedman-Lane" not in methods


# petbind-simulate --petprep-layout: the phantom's images (PSF 2.5 mm, head motion, noise) as
# PETPrep would leave them, perfectly motion-corrected, with the true anatomy in FreeSurfer's
# names; the seed study's regions that FreeSurfer parcellates the same way (left and right)
ONE_TO_ONE = {"thalamus": "Thalamus", "amygdala": "Amygdala", "hippocampus": "Hippocampus",
              "ventralstriatum": "Accumbens-area", "dorsalcaudate": "Caudate",
              "putamen": "Putamen", "pallidum": "Pallidum", "insula": "insula",
              "temporalpole": "temporalpole", "pcc": "posteriorcingulate",
              "acc": "rostralanteriorcingulate", "mcc": "caudalanteriorcingulate"}


def freesurfer_pair(structure: str) -> list[str]:
    if structure[0].islower():
        return [f"ctx-{h}-{structure}" for h in ("lh", "rh")]
    return [f"{side}-{structure}" for side in ("Left", "Right")]


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """Eight simulated participants (four avoidant with thalamic BPND 40 % lower), PET 3 mm,
    through the participant level from their PETPrep-style folder, then the group level."""
    from bids_app.cli.simulate import main as simulate_main
    root = tmp_path_factory.mktemp("layout")
    ds, out = root / "ds", root / "out"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "8", "--groups", "secure=4,avoidant=4", "--group-column",
        "attachment", "--effect", "thalamus=0.4", "--voxel-size", "3", "--t1-voxel-size", "3",
        "--skull-stripped", "--petprep-layout", "--seed", "3", "-q"]) == 0
    deriv = ds / "derivatives" / "petprep"
    # the TAC route alone, as after a PETPrep run that kept no images (the image route, which
    # runs petbind's anatomy per participant, is tested on two participants below)
    written = sorted(deriv.rglob("*_space-T1w_desc-preproc_pet.nii.gz"))
    for image in written:
        image.unlink()
    assert run_cli("petbind", petbind_main, [
        str(ds), str(out), "participant", "--derivatives", str(deriv), "-w", str(root / "work"),
        "--skip-bids-validation", "-q"]) == 0
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group",
                                             "--skip-bids-validation", "-q"]) == 0
    return {"ds": ds, "deriv": deriv, "out": out, "images": [p.name for p in written]}


def test_the_simulated_petprep_layout_is_named_and_timed_as_petprep_writes_it(layout):
    # PETPrep's names and its time convention (seconds from TimeZero, the raw sidecar's frames);
    # the segmentation's table, volumes and TAC columns name the same FreeSurfer regions
    deriv = layout["deriv"]
    description = json.loads((deriv / "dataset_description.json").read_text())
    assert description["GeneratedBy"][0]["Name"] == "PETPrep"
    pet, anat = deriv / "sub-01" / "pet", deriv / "sub-01" / "anat"
    assert "sub-01_trc-carfentanil_space-T1w_desc-preproc_pet.nii.gz" in layout["images"]
    for name in ("sub-01_trc-carfentanil_space-T1w_desc-brain_mask.nii.gz",
                 "sub-01_trc-carfentanil_desc-confounds_timeseries.tsv"):
        assert (pet / name).is_file(), name
    tacs = pd.read_csv(pet / "sub-01_trc-carfentanil_desc-preproc_seg-gtm_tacs.tsv", sep="\t")
    raw = json.loads((layout["ds"] / "sub-01" / "pet" / "sub-01_trc-carfentanil_pet.json")
                     .read_text())
    np.testing.assert_allclose(tacs["frame_start"], raw["FrameTimesStart"])
    np.testing.assert_allclose(tacs["frame_end"] - tacs["frame_start"], raw["FrameDuration"])
    table = pd.read_csv(anat / "sub-01_seg-gtm_dseg.tsv", sep="\t")
    morph = pd.read_csv(anat / "sub-01_desc-preproc_seg-gtm_morph.tsv", sep="\t")
    assert list(tacs.columns[2:]) == list(table["name"]) == list(morph["name"])
    assert set(REFERENCE) <= set(table["name"]) and (morph["volume-mm3"] > 0).all()
    # the segmentation's volume: an adult brain with its ventricles (the MNI template's brain,
    # which the phantom deforms, is about 1.7 L, larger than most)
    assert 1.2e6 < morph["volume-mm3"].sum() < 2.0e6


def test_regional_bpnd_from_the_simulated_layout_is_the_truth_less_partial_volume(layout):
    # The TACs are region means of images blurred by the scanner (PSF 2.5 mm, 3 mm voxels), so
    # BPND comes out low by the partial-volume loss (no PVC on this route): in every region and
    # participant between 0 and 30 % low, the same in every participant within a few percent
    # (it is geometry, not noise), and across regions it follows the truth (r > 0.98).
    truth = pd.read_csv(layout["ds"] / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    ratios = {}
    for sub, rows in truth.groupby("participant_id"):
        fits = pd.read_csv(layout["out"] / sub / "pet" / f"{sub}_trc-carfentanil_model-SRTM_"
                           "kinpar.tsv", sep="\t").set_index("region")["BPND"]
        true = rows.set_index("region")["BPND"]
        ratios[sub] = pd.Series({region: fits[freesurfer_pair(structure)].mean() / true[region]
                                 for region, structure in ONE_TO_ONE.items()})
        estimated = [fits[freesurfer_pair(s)].mean() for s in ONE_TO_ONE.values()]
        assert np.corrcoef(estimated, true[list(ONE_TO_ONE)])[0, 1] > 0.98, sub
    ratios = pd.DataFrame(ratios)
    assert ((ratios > 0.7) & (ratios < 1.0)).all().all(), ratios.round(3)
    assert (ratios.std(axis=1) < 0.04).all(), ratios.round(3)


def test_the_group_level_finds_the_planted_effect_from_the_simulated_layout(layout):
    # thalamic BPND 40 % lower in the avoidant group, found in both thalami from four
    # participants a group (the phantom's between-subject CV is about 17 %: t about 3.3)
    stats = pd.read_csv(layout["out"] / "group" / "trc-carfentanil_desc-roi_stats.tsv",
                        sep="\t")
    plain = stats[stats["model"] == "group"].set_index("region")
    for region in freesurfer_pair("Thalamus"):
        row = plain.loc[region]
        assert row["p"] < 0.05 and row["mean_avoidant"] < row["mean_secure"], row.to_dict()
    # a segmentation of ~80 regions: the report's table keeps the 20 of smallest p (the
    # thalami among them), and says where every region is
    report = (layout["out"] / "group" / "trc-carfentanil_report.html").read_text()
    table = report.split("ROI statistics (Table 2)")[1].split("<h2>")[0]
    assert f"{len(plain)} regions: the 20 of smallest p" in table
    assert table.count("<tr") == 1 + 20 * stats["model"].nunique()      # header and rows
    assert all(region in table for region in freesurfer_pair("Thalamus"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two simulated participants in PETPrep's layout with its images (PET 3 mm, motion 1 mm
    that PETPrep undid, with its estimates): the participant level from the images and the
    TACs."""
    from bids_app.cli.simulate import main as simulate_main
    root = tmp_path_factory.mktemp("images")
    ds, out = root / "ds", root / "out"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "2", "--groups", "secure=1,avoidant=1", "--group-column",
        "attachment", "--voxel-size", "3", "--t1-voxel-size", "3", "--skull-stripped",
        "--petprep-layout", "--seed", "5", "-q"]) == 0
    deriv = ds / "derivatives" / "petprep"
    before = tree_digest(deriv)
    proc = subprocess.run([sys.executable, "-m", "bids_app.cli.run", str(ds), str(out),
                           "participant", "--derivatives", str(deriv), "-w", str(root / "work"),
                           "--skip-bids-validation", "--nprocs", "2"],
                          capture_output=True, text=True, timeout=3000)
    return {"ds": ds, "deriv": deriv, "out": out, "proc": proc, "before": before}


def test_petpreps_images_give_maps_and_its_tacs_give_the_regional_fits(images):
    # one scan, two sources: maps (native, MNI, sm8) and QC from PETPrep's image; regional
    # fits of PETPrep's TACs under the plain names (what the group level reads) and petbind's
    # atlas fits on the image with their seg-; two reports; the summary names the sources
    proc, out = images["proc"], images["out"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    for sub in ("sub-01", "sub-02"):
        pet = out / sub / "pet"
        stem = f"{sub}_trc-carfentanil"
        for name in (f"{stem}_model-SRTM_meas-BPND_mimap.nii.gz",
                     f"{stem}_space-MNI152NLin2009cAsym_desc-sm8_model-SRTM_meas-BPND_mimap.nii.gz",
                     f"{stem}_seg-neuromorphometrics_model-SRTM_kinpar.tsv",
                     f"{stem}_seg-gtm_tacs.tsv", f"{stem}_qc.tsv"):
            assert (pet / name).is_file(), name
        plain = pd.read_csv(pet / f"{stem}_model-SRTM_kinpar.tsv", sep="\t")
        assert "Left-Thalamus" in set(plain["region"])                  # FreeSurfer's names
        atlas = pd.read_csv(pet / f"{stem}_seg-neuromorphometrics_model-SRTM_kinpar.tsv",
                            sep="\t")
        assert "thalamus" in set(atlas["region"])
        assert (out / f"{stem}.html").is_file() and (out / f"{stem}_seg-gtm.html").is_file()
        side = json.loads((pet / f"{stem}_model-SRTM_meas-BPND_mimap.json").read_text())
        assert side["PreprocessedBy"].startswith("PETPrep")
        assert side["Sources"][0].endswith(f"{stem}_space-T1w_desc-preproc_pet.nii.gz")
        assert f"{stem} (preprocessed by PETPrep" in proc.stderr
        assert f"{stem} (regional fits of PETPrep" in proc.stderr
    assert tree_digest(images["deriv"]) == images["before"]            # PETPrep's folder untouched


def test_the_image_routes_bpnd_is_the_truth_less_partial_volume(images):
    # petbind's atlas on PETPrep's image: in the seed study's ROIs BPND is low by the
    # partial-volume loss of 3 mm voxels and a 2.5 mm PSF (no PVC asked), between 0 and 30 %
    # as on the TAC route, and follows the truth across regions; the MNI map correlates with
    # the true MNI map as petbind's own pipeline's does on its phantoms (0.91-0.93)
    import nibabel as nib
    truth = pd.read_csv(images["ds"] / "derivatives" / "truth" / "regional_bpnd.tsv",
                        sep="\t")
    for sub, rows in truth.groupby("participant_id"):
        pet = images["out"] / sub / "pet"
        fits = pd.read_csv(pet / f"{sub}_trc-carfentanil_seg-neuromorphometrics_model-SRTM_"
                           "kinpar.tsv", sep="\t").set_index("region")["BPND"]
        true = rows.set_index("region")["BPND"]
        regions = [r for r in true.index if r in fits.index and true[r] > 0.2]
        ratio = fits[regions] / true[regions]
        assert ((ratio > 0.7) & (ratio < 1.02)).all(), ratio.round(3).to_dict()
        assert np.corrcoef(fits[regions], true[regions])[0, 1] > 0.98
        estimate = nib.load(pet / f"{sub}_trc-carfentanil_space-MNI152NLin2009cAsym_model-SRTM_"
                            "meas-BPND_mimap.nii.gz").get_fdata()
        true_map = nib.load(next((images["ds"] / "derivatives" / "truth" / sub).rglob(
            "*space-MNI152NLin2009cAsym*meas-BPND_mimap.nii.gz"))).get_fdata()
        inside = (true_map > 0) & np.isfinite(estimate) & (estimate != 0)
        assert np.corrcoef(estimate[inside], true_map[inside])[0, 1] > 0.85


def test_the_motion_is_the_one_petprep_estimated(images):
    # PETPrep's confounds table carries the head motion it undid (here the simulated poses):
    # the motion table and the QC's largest translation are those, not zero and not petbind's
    motion = pd.read_csv(images["out"] / "sub-01" / "pet" / "sub-01_trc-carfentanil_motion.tsv",
                         sep="\t")
    truth = pd.read_csv(next((images["ds"] / "derivatives" / "truth" / "sub-01").rglob(
        "*_desc-truth_motion.tsv")), sep="\t")
    np.testing.assert_allclose(motion[["trans_x", "rot_z"]], truth[["trans_x", "rot_z"]],
                               atol=1e-5)
    qc = pd.read_csv(images["out"] / "sub-01" / "pet" / "sub-01_trc-carfentanil_qc.tsv",
                     sep="\t").set_index("metric")["value"]
    largest = truth[["trans_x", "trans_y", "trans_z"]].abs().to_numpy().max()
    assert qc["max_translation_mm"] == pytest.approx(largest, abs=1e-4) and largest > 0.3


@pytest.mark.parametrize("how", ["frames", "transform"])
def test_a_bad_petprep_image_or_transform_is_refused_and_the_others_go_on(images, tmp_path,
                                                                          how):
    # sub-02's image has one frame too few, or its normalisation is not an ITK (HDF5) file:
    # refused in one line (exit 65); sub-01, whose image is left out here, goes on from its TACs
    import nibabel as nib
    import shutil
    ds = tmp_path / "ds"
    shutil.copytree(images["ds"], ds)
    deriv = ds / "derivatives" / "petprep"
    (deriv / "sub-01" / "pet" / "sub-01_trc-carfentanil_space-T1w_desc-preproc_pet.nii.gz"
     ).unlink()
    if how == "frames":
        bad = deriv / "sub-02" / "pet" / \
            "sub-02_trc-carfentanil_space-T1w_desc-preproc_pet.nii.gz"
        img = nib.load(bad)
        nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj)[..., :-1], img.affine), bad)
        message = "frame(s) but the raw sidecar"
    else:
        anat = deriv / "sub-02" / "anat"
        anat.mkdir(exist_ok=True)
        bad = anat / "sub-02_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.h5"
        bad.write_text("#Insight Transform File V1.0\n")
        (anat / "sub-02_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5").write_text("")
        message = "not an ITK transform (HDF5) file"
    proc = subprocess.run([sys.executable, "-m", "bids_app.cli.run", str(ds), str(tmp_path / "out"),
                           "participant", "--derivatives", str(deriv), "-w",
                           str(tmp_path / "work"), "--skip-bids-validation"],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 65, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "REFUSED sub-02" in line]
    assert len(lines) == 1 and str(bad) in lines[0] and message in lines[0]
    assert (tmp_path / "out" / "sub-01" / "pet" / "sub-01_trc-carfentanil_model-SRTM_kinpar.tsv"
            ).is_file()


# REAL data: ds004869's [11C]MC1 PETPrep TACs. Six of the ten blocked participants (celecoxib,
# which the dataset's authors found to block COX-2 almost completely) and three of the
# test-retest (all 54 scans: benchmarks/mc1.py, figures in docs/validation.md).
MC1_BLOCKED = [f"{i:02d}" for i in range(1, 7)]
MC1_PARTICIPANTS = MC1_BLOCKED + ["11", "12", "13"]


@pytest.fixture(scope="module")
def mc1(tmp_path_factory):
    from conftest import shared_data

    bids = shared_data("ds004869-mc1")
    root = tmp_path_factory.mktemp("mc1")
    out = root / "out"
    code = run_cli("petbind", petbind_main, [
        str(bids), str(out), "participant", "--derivatives",
        str(bids / "derivatives" / "petprep"), "--skip-bids-validation", "-w",
        str(root / "work"), "--nprocs", "2", "-q", "--participant-label", *MC1_PARTICIPANTS])
    return {"bids": bids, "out": out, "code": code}


def mc1_bpnd(out: Path, model: str) -> dict[tuple[str, str], pd.Series]:
    found = {}
    for path in sorted(out.glob(f"sub-*/ses-*/pet/*_model-{model}_kinpar.tsv")):
        sub, ses = path.name.split("_")[:2]
        found[sub, ses] = pd.read_csv(path, sep="\t").set_index("region")["BPND"]
    return found


def test_every_real_mc1_scan_gives_regional_bpnd_with_every_model(mc1):
    assert mc1["code"] == 0
    for model in MODELS:
        fits = mc1_bpnd(mc1["out"], model)
        assert len(fits) == 2 * len(MC1_PARTICIPANTS), model
        for bpnd in fits.values():
            cortex = bpnd[bpnd.index.str.startswith("ctx-")]
            assert len(cortex) >= 60 and cortex.notna().all(), model


def test_srtm_fits_on_their_bounds_are_flagged_in_real_mc1(mc1, capsys):
    # three-parameter SRTM is not identifiable at MC1's low binding: many fits run to a bound,
    # and the QC says so (the share of regional fits on a bound, at most 0.25 by default)
    flagged = [pd.read_csv(path, sep="\t").set_index("metric").loc[
        "regions_on_bound_fraction", "flagged"] for path in mc1["out"].glob(
        "sub-*/ses-*/pet/*_qc.tsv")]
    assert len(flagged) == 2 * len(MC1_PARTICIPANTS)
    assert any(flagged)
    # each report warns of it: the QC line and the regions on a bound, one by one up to five,
    # else in one line (not a screenful)
    reports = [r.read_text() for r in mc1["out"].glob("sub-*_trc-mc1.html")]
    assert len(reports) == 2 * len(MC1_PARTICIPANTS)
    for text in reports:
        assert text.split("<h2>Warnings</h2>")[1].split("<h2>")[0].count("<li>") <= 6
    assert any("regional SRTM on a bound in" in text for text in reports)


def test_mrtm2_and_srtm2_agree_on_real_mc1_cortex(mc1):
    # both fix k2' (the same value, from the SRTM fits): the same model, linear against
    # nonlinear estimation, so they must agree region by region
    mrtm2, srtm2 = mc1_bpnd(mc1["out"], "MRTM2"), mc1_bpnd(mc1["out"], "SRTM2")
    for scan, values in mrtm2.items():
        cortex = values.index.str.startswith("ctx-")
        diff = (values[cortex] - srtm2[scan][cortex]).abs()
        assert diff.median() < 0.03, (scan, diff.median())


def test_celecoxib_occupies_cox2_in_real_mc1_data(mc1):
    assert run_cli("petbind", petbind_main, [
        str(mc1["bids"]), str(mc1["out"]), "group", "--analysis", "occupancy",
        "--baseline-session", "baseline", "--blocked-session", "blocked", "--model", "mrtm2",
        "--min-baseline-bpnd", "0.1", "-q"]) == 0
    table = pd.read_csv(mc1["out"] / "group" / "occupancy" /
                        "trc-mc1_desc-participant_occupancy.tsv", sep="\t")
    assert len(table) == len(MC1_BLOCKED)
    # almost complete blockade (the dataset's finding) where baseline binding allows a fit
    assert table["occupancy"].median() > 0.8
    assert (table["occupancy"] > 0.6).sum() >= len(MC1_BLOCKED) - 1


def test_test_retest_runs_on_real_mc1_regional_fits(mc1):
    assert run_cli("petbind", petbind_main, [
        str(mc1["bids"]), str(mc1["out"]), "group", "--analysis", "retest",
        "--test-session", "test", "--retest-session", "retest", "--model", "mrtm2",
        "-q"]) == 0
    table = pd.read_csv(mc1["out"] / "group" / "retest" / "trc-mc1_desc-region_retest.tsv",
                        sep="\t").set_index("region")
    cortex = table[table.index.str.startswith("ctx-")]
    assert (cortex["n"] == 3).all()
    # no systematic change between two scans of the same people: the median bias is small
    # against the median BPND
    assert abs(cortex["bias"].median()) < 0.25 * cortex["mean"].median()
