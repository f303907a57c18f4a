"""Hostile and broken group-level inputs (datasets petbind did not make): names from the data
stay data (never code, never a path), every write stays inside the output folder, a results
folder holds one run's results, and broken maps or tables give one line and an exit code, or
leave the participant out with the reason, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from bids_app import names
from bids_app.cli.common import run_cli
from bids_app.cli.run import main as petbind_main
from bids_app.cli.simulate import main as simulate_main
from conftest import tree_digest

# names as they come in shared datasets: spaces, quotes, apostrophes, path parts, a Python
# expression, LaTeX; the expression would create a file named PWNED if it ever ran
EXPRESSION = "__import__('os').system('touch PWNED')"
HOSTILE = ["biological sex", "Broca's area", 'say "hi"', "a/b", "../x", EXPRESSION,
           "$\\alpha$", "x;y"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """8 participants' MNI maps (4 per group), made once."""
    ds = tmp_path_factory.mktemp("hostile") / "ds"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--groups", "a=4,b=4", "--derivatives-only", "--seed", "4", "-q"]) == 0
    return ds


@pytest.fixture()
def ds(simulated, tmp_path, monkeypatch):
    """A copy of the dataset for one test, run from inside ``tmp_path`` (so a file an injected
    command made would be found there)."""
    copy = tmp_path / "ds"
    shutil.copytree(simulated, copy)
    monkeypatch.chdir(tmp_path)
    return copy


def out(ds: Path) -> Path:
    return ds / "derivatives" / "petbind"


def group(ds: Path, *args: str) -> int:
    before = {p for p in ds.parent.rglob("*") if p.is_file()}
    try:
        code = run_cli("petbind", petbind_main, [str(ds), str(out(ds)), "group",
                                                 "--n-permutations", "10", "-q", *args])
    except SystemExit as exit_:                 # argparse's own usage errors exit with 64
        code = exit_.code
    made = {p for p in ds.parent.rglob("*") if p.is_file()} - before
    outside = [p for p in made if out(ds) not in p.parents]
    assert outside == [], outside                          # every write inside OUT
    assert not list(ds.parent.rglob("PWNED"))              # no name from the data ran
    return code


def edit_participants(ds: Path, **columns) -> pd.DataFrame:
    table = pd.read_csv(ds / "participants.tsv", sep="\t", dtype=str)
    for name, values in columns.items():
        table[name] = values
    table.to_csv(ds / "participants.tsv", sep="\t", index=False)
    return table


@pytest.mark.parametrize("level", HOSTILE)
def test_hostile_group_levels_are_labels_in_file_names_and_data_in_tables(ds, level, capsys):
    table = pd.read_csv(ds / "participants.tsv", sep="\t", dtype=str)
    edit_participants(ds, group=table["group"].replace({"a": level}))
    assert group(ds, "--reference-group", level) == 0, capsys.readouterr().err
    label = "".join(c for c in level if c.isalnum())
    group_dir = out(ds) / "group"
    assert (group_dir / names.group_name("carfentanil", "statmap", ".nii.gz",
                                         contrast=f"{label}GtOthers", stat="t")).is_file()
    settings = json.loads((group_dir / "trc-carfentanil_desc-settings.json").read_text())
    assert settings["LevelLabels"][level] == label and settings["ReferenceGroup"] == level
    stats = pd.read_csv(group_dir / "trc-carfentanil_desc-roi_stats.tsv", sep="\t")
    assert f"mean_{level}" in stats.columns and stats["F"].notna().all()
    assert "Contrast" in (group_dir / "trc-carfentanil_report.html").read_text()


@pytest.mark.parametrize("levels,message", [
    (("a/b", "ab"), "would both be named 'ab'"),
    (("../..", "b"), "has no letters or digits"),
])
def test_levels_that_cannot_name_files_apart_are_refused(ds, levels, message, capsys):
    table = pd.read_csv(ds / "participants.tsv", sep="\t", dtype=str)
    edit_participants(ds, group=table["group"].replace({"a": levels[0], "b": levels[1]}))
    assert group(ds) == 65
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_hostile_column_names_are_columns_not_code(ds, capsys):
    # the group column and both covariates named as hostile datasets name them: the models are
    # built from the values (no formula), every statistic is computed
    table = pd.read_csv(ds / "participants.tsv", sep="\t", dtype=str)
    table = table.rename(columns={"group": "Broca's area", "age": EXPRESSION,
                                  "sex": "biological sex"})
    table.to_csv(ds / "participants.tsv", sep="\t", index=False)
    (ds / "participants.json").unlink()
    assert group(ds, "--group-column", "Broca's area", "--covariates", EXPRESSION,
                 "biological sex") == 0, capsys.readouterr().err
    stats = pd.read_csv(out(ds) / "group" / "trc-carfentanil_desc-roi_stats.tsv", sep="\t")
    adjusted = stats[stats["model"] == f"group + {EXPRESSION} + biological sex"]
    assert len(adjusted) and adjusted["F"].notna().all()


def test_hostile_atlas_label_names(ds, capsys):
    from workflows.imaging.atlas import atlas_on_grid, mni_grid, region_labels
    grid = mni_grid(2.0)
    neuro = atlas_on_grid(grid)
    custom = np.zeros(grid.shape, dtype=np.int16)
    for index, region in enumerate(("hippocampus", "thalamus", "amygdala", "insula"), start=1):
        custom[np.isin(neuro, region_labels(region))] = index
    atlas = ds.parent / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(custom, grid.affine), atlas)
    (ds.parent / "atlas.tsv").write_text("index\tname\n" + "".join(
        f"{i}\t{n}\n" for i, n in enumerate(("Broca's area", "$\\alpha$", EXPRESSION,
                                             "a/b"), start=1)))
    assert group(ds, "--roi-atlas", str(atlas)) == 0, capsys.readouterr().err
    values = pd.read_csv(out(ds) / "group" / "trc-carfentanil_desc-roi_bpnd.tsv", sep="\t")
    assert {"Broca's area", "$\\alpha$", EXPRESSION, "a/b"} <= set(values.columns)
    assert (out(ds) / "group" / "figures" / "trc-carfentanil_roi.png").is_file()


@pytest.mark.parametrize("tsv,message", [
    ("index\tname\nx\thippo\n", "not a whole number"),
    ("index\tname\n1\thippo\n2\thippo\n", "a name of its own"),
    ("label\tname\n1\thippo\n", "needs columns"),
])
def test_broken_atlas_tables_are_one_line(ds, tsv, message, capsys):
    from workflows.imaging.atlas import mni_grid
    grid = mni_grid(2.0)
    atlas = ds.parent / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(grid.shape, np.int16), grid.affine), atlas)
    (ds.parent / "atlas.tsv").write_text(tsv)
    assert group(ds, "--roi-atlas", str(atlas)) == 65
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("tracer", ["../x", "a/b", "x y"])
def test_a_tracer_label_that_is_not_a_label_is_a_usage_error(ds, tracer, capsys):
    assert group(ds, "--tracer", tracer) == 64
    assert "letters and digits" in capsys.readouterr().err


def test_a_rerun_replaces_the_earlier_results_as_a_whole(ds):
    # first with voxel FDR and covariates, then without: nothing of the first run is left, and
    # the settings describe exactly the second
    assert group(ds, "--voxel-fdr") == 0
    group_dir = out(ds) / "group"
    assert list(group_dir.glob("*desc-voxelFDR*")) and list(group_dir.glob("*Adj_*"))
    assert group(ds, "--covariates") == 0
    assert not list(group_dir.glob("*desc-voxelFDR*")) and not list(group_dir.glob("*Adj_*"))
    settings = json.loads((group_dir / "trc-carfentanil_desc-settings.json").read_text())
    assert settings["Covariates"] == [] and settings["VoxelFDR"] is False
    assert not list(out(ds).glob(".group-*"))              # no staging folder left


def test_a_run_that_fails_part_way_leaves_the_earlier_results_untouched(ds, monkeypatch):
    assert group(ds) == 0
    before = tree_digest(out(ds) / "group")
    import bids_app.group as group_module
    real = group_module.roi_tables

    def fail_after_the_voxelwise_maps(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(group_module, "roi_tables", fail_after_the_voxelwise_maps)
    with pytest.raises(OSError):
        run_cli("petbind", petbind_main, [str(ds), str(out(ds)), "group", "--n-permutations",
                                          "10", "-q", "--voxel-fdr"])
    assert tree_digest(out(ds) / "group") == before
    assert not list(out(ds).glob(".group-*"))


def test_results_of_other_tracers_are_kept(ds):
    # a run for one tracer keeps another tracer's complete results beside its own
    group_dir = out(ds) / "group"
    group_dir.mkdir(parents=True)
    (group_dir / "trc-madam_desc-roi_stats.tsv").write_text("region\n")
    assert group(ds, "--tracer", "carfentanil") == 0
    assert (group_dir / "trc-madam_desc-roi_stats.tsv").read_text() == "region\n"
    assert (group_dir / "trc-carfentanil_desc-roi_stats.tsv").is_file()


def test_duplicate_participant_rows_are_refused(ds, capsys):
    table = pd.read_csv(ds / "participants.tsv", sep="\t", dtype=str)
    pd.concat([table, table.iloc[[2]]]).to_csv(ds / "participants.tsv", sep="\t", index=False)
    assert group(ds) == 65
    assert "sub-03 listed more than once" in capsys.readouterr().err


def test_a_non_numeric_covariate_value_is_refused(ds, capsys):
    table = pd.read_csv(ds / "participants.tsv", sep="\t", dtype=str)
    edit_participants(ds, age=table["age"].where(table.index != 1, "forty"))
    assert group(ds) == 65
    err = capsys.readouterr().err
    assert "age of sub-02 is 'forty', not a number" in err


def test_one_group_only_is_refused(ds, capsys):
    edit_participants(ds, group="a")
    assert group(ds) == 65
    assert "a comparison needs at least two" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["--fdr-q", "2"], "--fdr-q 2"), (["--fdr-q", "0"], "--fdr-q 0"),
    (["--n-permutations", "0"], "--n-permutations 0"),
    (["--n-permutations", "-5"], "--n-permutations -5"),
    (["--cluster-threshold", "0"], "--cluster-threshold 0"),
    (["--cluster-threshold", "1"], "--cluster-threshold 1"),
    (["--cluster-threshold", "-0.5"], "--cluster-threshold -0.5"),
    (["--model", "srtm"], "invalid choice: 'srtm'"),        # regional only: no maps
    (["--covariates", "group"], "not the group column"),
])
def test_options_out_of_range_are_usage_errors(ds, args, message, capsys):
    assert group(ds, *args) == 64
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1], err                  # the last line names the option


def break_map(ds: Path, sub: str, how: str) -> None:
    path = next(p for p in names.find(out(ds), "mimap", ".nii.gz", trc="carfentanil",
                                      space=names.TEMPLATE_SPACE, desc=None, model="SRTM",
                                      meas="BPND") if p.name.startswith(f"{sub}_"))
    img = nib.load(path)
    data = np.asarray(img.dataobj)
    if how == "other grid":                     # same shape, origin 4 mm off
        shifted = img.affine.copy()
        shifted[:3, 3] += 4.0
        nib.save(nib.Nifti1Image(data, shifted), path)
    elif how == "other shape":
        nib.save(nib.Nifti1Image(data[:-1], img.affine), path)
    elif how == "all NaN":
        nib.save(nib.Nifti1Image(np.full(data.shape, np.nan, np.float32), img.affine), path)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif how == "not NIfTI":
        path.write_text("not an image")


@pytest.mark.parametrize("how", ["other grid", "other shape", "all NaN", "truncated",
                                 "not NIfTI"])
def test_a_broken_map_leaves_its_participant_out_with_the_reason(ds, how, capsys):
    break_map(ds, "sub-02", how)
    assert group(ds) == 0, capsys.readouterr().err
    left = pd.read_csv(out(ds) / "group" / "trc-carfentanil_desc-leftout_participants.tsv",
                       sep="\t")
    assert list(left["participant_id"]) == ["sub-02"], left
    roi = pd.read_csv(out(ds) / "group" / "trc-carfentanil_desc-roi_bpnd.tsv", sep="\t")
    assert "sub-02" not in set(roi["participant_id"])        # in no analysis
    design = pd.read_csv(out(ds) / "group" / "trc-carfentanil_contrast-aGtOthers_design.tsv",
                         sep="\t")
    assert "sub-02" not in set(design["participant_id"])


def test_participants_with_maps_but_no_row_are_listed(ds):
    table = pd.read_csv(ds / "participants.tsv", sep="\t", dtype=str)
    table[table["participant_id"] != "sub-08"].to_csv(ds / "participants.tsv", sep="\t",
                                                      index=False)
    assert group(ds) == 0
    left = pd.read_csv(out(ds) / "group" / "trc-carfentanil_desc-leftout_participants.tsv",
                       sep="\t")
    assert left.set_index("participant_id").loc["sub-08", "reason"] == \
        "maps but no row in participants.tsv"


def write_qc(ds: Path, sub: str, missing_ml: float) -> None:
    from workflows.imaging.qc import qc_table
    scan = names.ScanEntities(sub[4:], None, "carfentanil")
    qc_table({"brain_missing_ml": missing_ml, "coregistration_offset_mm": 0.0}).to_csv(
        names.scan_file(out(ds), scan, "qc", ".tsv"), sep="\t", index=False)


def test_scans_flagged_by_qc_are_listed_and_left_out_on_request(ds):
    write_qc(ds, "sub-02", 68.0)                       # a brain mask that lost frontal brain
    write_qc(ds, "sub-03", 0.0)
    assert group(ds) == 0
    qc = pd.read_csv(out(ds) / "group" / "trc-carfentanil_qc.tsv", sep="\t",
                     keep_default_na=False).set_index("participant_id")
    assert qc.loc["sub-02", "flagged"] == "brain_missing_ml" and qc.loc["sub-03", "flagged"] == ""
    report = (out(ds) / "group" / "trc-carfentanil_report.html").read_text()
    assert "Quality control" in report and "brain_missing_ml" in report
    left = out(ds) / "group" / "trc-carfentanil_desc-leftout_participants.tsv"
    assert "sub-02" not in set(pd.read_csv(left, sep="\t")["participant_id"])
    assert group(ds, "--exclude-flagged") == 0
    left = pd.read_csv(left, sep="\t").set_index("participant_id")
    assert left.loc["sub-02", "reason"] == "QC flagged: brain_missing_ml"
    settings = json.loads((out(ds) / "group" / "trc-carfentanil_desc-settings.json").read_text())
    assert settings["ExcludeQCFlagged"] is True
