"""The group level: the participants and their maps (BIDS I/O), the voxelwise GLM with
permutation cluster-level FDR and the ROI tables (:mod:`workflows.group`), written with their
settings, methods and report."""

from __future__ import annotations

import os
import re
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np
import pandas as pd

from bids_app import names
from bids_app.bids_io import (read_json_object, read_text_tsv, write_json, write_nifti,
                              write_tsv, writes_confined_to)
from bids_app.boilerplate import intro, write_citation
from bids_app.config import Config, GroupConfig
from bids_app.errors import EX_DATAERR, EX_NOINPUT, EX_USAGE, PetbindError
from workflows.group.design import Analysis, group_analyses
from workflows.group.glm import Inference, permutation_inference, tfce_inference
from workflows.group.roi import roi_means, table2
from workflows.imaging.atlas import (SEED_ROIS, Grid, atlas_labels, atlas_on_grid, mni_grid,
                                     region_labels, template_mask_on_grid)


def say(config: Config, message: str) -> None:
    if config.run.verbosity >= 0:
        print(f"petbind group: {message}", file=sys.stderr, flush=True)


@dataclass
class Study:
    """What every tracer's analysis shares: participants.tsv, the group column, its levels and
    their labels in file names, the covariates, the MNI grid with the atlas and brain mask,
    and the ROI atlas."""

    participants: pd.DataFrame
    group: str
    levels: list[str]
    level_labels: dict[str, str]
    reference: str
    covariates: list[str]
    grid: Grid
    labels: np.ndarray
    brain: np.ndarray
    roi_labels: np.ndarray
    regions: dict[str, list[int]]

    def record(self, session: str | None) -> dict:
        """The design as a tracer's settings file records it."""
        return {"GroupColumn": self.group, "Levels": self.levels,
                "ReferenceGroup": self.reference, "LevelLabels": self.level_labels,
                "Covariates": self.covariates, "Session": session}


MISSING = ["n/a", "NA", "NaN", "nan", ""]


def read_participants(bids_dir: Path) -> tuple[pd.DataFrame, dict]:
    """participants.tsv as text (each column is typed where it is used) and participants.json;
    one row per participant."""
    path = bids_dir / "participants.tsv"
    if not path.is_file():
        raise PetbindError(f"{path}: missing; the group level needs participants.tsv with a "
                           "group column", EX_NOINPUT)
    table = read_text_tsv(path, na_values=MISSING)
    if "participant_id" not in table.columns:
        raise PetbindError(f"{path}: no participant_id column; BIDS requires it first",
                           EX_DATAERR)
    ids = table["participant_id"].astype(str)
    twice = sorted(ids[ids.duplicated()].unique())
    if twice:
        raise PetbindError(f"{path}: {', '.join(twice)} listed more than once; keep one row per "
                           "participant", EX_DATAERR)
    meta_path = bids_dir / "participants.json"
    meta = read_json_object(meta_path) if meta_path.is_file() else {}
    return table, meta


def level_labels(levels: list[str], group: str, path: Path) -> dict[str, str]:
    """Each group level's label in file names: its letters and digits ("avoidant-type" ->
    "avoidanttype"). A level with none, or two levels with the same label, is an error: a name
    from the data never becomes a path as it is."""
    labels = {level: re.sub(r"[^A-Za-z0-9]", "", level) for level in levels}
    empty = [level for level, label in labels.items() if not label]
    if empty:
        raise PetbindError(f"{path}: group {empty[0]!r} of {group!r} has no letters or digits "
                           "to name its files; rename it", EX_DATAERR)
    clash = [(a, b) for i, a in enumerate(levels) for b in levels[i + 1:]
             if labels[a] == labels[b]]
    if clash:
        raise PetbindError(f"{path}: groups {clash[0][0]!r} and {clash[0][1]!r} of {group!r} "
                           f"would both be named {labels[clash[0][0]]!r} in file names; rename "
                           "one", EX_DATAERR)
    return labels


def typed_covariates(table: pd.DataFrame, covariates: list[str], meta: dict,
                     path: Path) -> pd.DataFrame:
    """The covariate columns typed: numeric where participants.json gives Units or every value
    is a number, categorical (text) where it gives Levels or no value is; a column with numbers
    and other text (age "forty") is an error naming the value."""
    table = table.copy()
    for c in covariates:
        described = meta.get(c) if isinstance(meta.get(c), dict) else {}
        values = table[c]
        numeric = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & numeric.isna()
        wants_number = "Units" in described or ("Levels" not in described and
                                                  bad.sum() < values.notna().sum())
        if wants_number and bad.any():
            row = table[bad].iloc[0]
            raise PetbindError(f"{path}: {c} of {row['participant_id']} is {row[c]!r}, not a "
                               f"number; fix it (or write n/a)", EX_DATAERR)
        table[c] = numeric if wants_number else values
    return table


def choose_group_column(table: pd.DataFrame, meta: dict, requested: str | None,
                        path: Path) -> str:
    if requested:
        if requested not in table.columns:
            raise PetbindError(f"{path}: no column {requested!r} for --group-column; columns: "
                               f"{', '.join(table.columns)}", EX_USAGE)
        return requested
    candidates = [c for c, d in meta.items() if isinstance(d, dict) and "Levels" in d
                  and c in table.columns and c.lower() not in ("sex", "gender", "handedness")]
    if len(candidates) != 1:
        raise PetbindError(f"{path}: cannot tell the group column (participants.json marks "
                           f"{candidates or 'none'} with Levels); give --group-column", EX_USAGE)
    return candidates[0]


def session_of(path: Path) -> str | None:
    """The ses- label of a participant derivative (None: no session)."""
    return names.parse(path.name)[0].get("ses")


def find_maps(output_dir: Path, tracer: str, model_label: str, desc: str | None,
              session: str | None, pvc: str | None = None) -> dict[str, Path]:
    """Each participant's BPND map in MNI space of this session (the first run's); ``pvc``:
    the maps with that pvc- label."""
    out = {}
    for path in names.find(output_dir, "mimap", ".nii.gz", trc=tracer,
                           space=names.TEMPLATE_SPACE, desc=desc, model=model_label,
                           meas="BPND", pvc=pvc):
        if session_of(path) == session:
            out.setdefault(path.name.split("_")[0], path)
    return out


def unsmoothed_maps(output_dir: Path, model_label: str, tracer: str = "*") -> list[Path]:
    return names.find(output_dir, "mimap", ".nii.gz", trc=tracer, space=names.TEMPLATE_SPACE,
                      desc=None, model=model_label, meas="BPND", pvc=None)


def tracers_in(output_dir: Path, model_label: str) -> list[str]:
    """The tracers with BPND maps or regional fits of the model."""
    from bids_app.paired import regional_fit_files

    found = [*unsmoothed_maps(output_dir, model_label),
             *regional_fit_files(output_dir, model_label)]
    return sorted({names.parse(p.name)[0]["trc"] for p in found})


def choose_session(output_dir: Path, model_label: str, tracer: str, requested: str | None
                   ) -> str | None:
    """The session whose maps a tracer's analysis compares across participants: the one
    requested (--session-label), else the only one there is. Several sessions and none
    requested is an error listing them: a silent pick would analyse an arbitrary session."""
    from bids_app.paired import sessions_with_results

    sessions = sorted(sessions_with_results(output_dir, model_label, tracer),
                      key=lambda s: s or "")
    shown = ", ".join(s or "(none)" for s in sessions)
    if requested is not None:
        if requested not in sessions:
            raise PetbindError(f"--session-label {requested}: trc-{tracer} has no {model_label} "
                               f"BPND maps or regional fits of ses-{requested} in "
                               f"{output_dir}; sessions: {shown}", EX_USAGE)
        return requested
    if len(sessions) > 1:
        raise PetbindError(f"{output_dir}: trc-{tracer} has BPND of several sessions "
                           f"({shown}); choose one with --session-label", EX_USAGE)
    return sessions[0] if sessions else None


def study_from(config: Config) -> Study:
    """participants.tsv and the settings resolved against it, checked."""
    bids_dir, settings = config.run.bids_dir, config.group
    participants, meta = read_participants(bids_dir)
    group = choose_group_column(participants, meta, settings.group_column,
                                bids_dir / "participants.tsv")
    path = bids_dir / "participants.tsv"
    levels = list(dict.fromkeys(participants[group].dropna()))
    described = meta.get(group) if isinstance(meta.get(group), dict) else {}
    if isinstance(described.get("Levels"), dict):
        listed = [str(v) for v in described["Levels"] if str(v) in levels]
        levels = listed + [v for v in levels if v not in listed]
    if len(levels) < 2:
        raise PetbindError(f"{path}: {group!r} has {len(levels)} group(s) "
                           f"({', '.join(levels) or 'none'}); a comparison needs at least two",
                           EX_DATAERR)
    reference = settings.reference_group or levels[0]
    if reference not in levels:
        raise PetbindError(f"--reference-group {reference!r} is not a level of {group!r} "
                           f"({', '.join(levels)})", EX_USAGE)
    covariates = settings.covariates if settings.covariates is not None else [
        c for c in ("age", "sex") if c in participants.columns]
    missing = [c for c in covariates if c not in participants.columns]
    if missing:
        raise PetbindError(f"{path}: no column(s) {', '.join(missing)} for --covariates",
                           EX_USAGE)
    if group in covariates or len(set(covariates)) < len(covariates):
        raise PetbindError(f"--covariates {' '.join(covariates)}: each column once, and not "
                           f"the group column {group!r}", EX_USAGE)
    participants = typed_covariates(participants, covariates, meta, path)
    grid = mni_grid(settings.mni_voxel_mm)
    labels = atlas_on_grid(grid)
    roi_labels, regions = read_roi_atlas(settings.roi_atlas, grid, labels)
    return Study(participants, group, levels, level_labels(levels, group, path), reference,
                 covariates, grid, labels, template_mask_on_grid(grid), roi_labels, regions)


def run_group(config: Config) -> int:
    """Every tracer's analysis, written to a staging folder and swapped in as a whole when all
    succeeded (:func:`staged_group_folder`): the group folder holds one run's results."""
    out_dir = config.run.output_dir
    if not out_dir.is_dir():
        raise PetbindError(f"{out_dir}: no such folder; give the participant level's output "
                           "folder", EX_NOINPUT)
    with writes_confined_to(out_dir):
        return analyse(config, out_dir)


def analyse(config: Config, out_dir: Path) -> int:
    study = study_from(config) if config.group.analysis == "groups" else None
    label = config.group.model_label
    bad = [t for t in config.run.tracers if not re.fullmatch(r"[A-Za-z0-9]+", t)]
    if bad:
        raise PetbindError(f"--tracer {bad[0]!r}: a trc- label has letters and digits only",
                           EX_USAGE)
    tracers = config.run.tracers or tracers_in(out_dir, label)
    if not tracers:
        raise PetbindError(f"{out_dir}: no participant-level {label} BPND maps in "
                           f"{names.TEMPLATE_SPACE} or regional fits; run the participant "
                           "level first", EX_NOINPUT)
    if config.group.analysis == "occupancy":
        from bids_app.occupancy import FOLDER, run_occupancy
        run_occupancy(config, out_dir, tracers)
        say(config, f"results in {out_dir / 'group' / FOLDER}")
        return 0
    if config.group.analysis == "retest":
        from bids_app.retest import FOLDER, run_retest
        run_retest(config, out_dir, tracers)
        say(config, f"results in {out_dir / 'group' / FOLDER}")
        return 0
    from bids_app.paired import regional_only

    sessions = {t: choose_session(out_dir, label, t, config.group.session) for t in tracers}
    with staged_group_folder(out_dir, tracers) as group_dir:
        for tracer in tracers:
            run_tracer(config, study, tracer, sessions[tracer], group_dir)
        write_citation(group_dir / "logs", "Methods: petbind group level",
                       group_methods(config.group, study, regional_only(out_dir, label,
                                                                         tracers)))
    say(config, f"results in {out_dir / 'group'}")
    return 0


# each analysis but "groups" writes to its own folder in group/ (with its own logs/)
ANALYSIS_FOLDERS = {"groups": "", "occupancy": "occupancy", "retest": "retest"}


def replaced_by_run(rel: Path, tracers: list[str], analysis: str) -> bool:
    """True for a file of group/ (``rel``: its path inside) that a run of ``analysis`` on
    ``tracers`` writes anew: in the analysis's folder, of one of the tracers or a log."""
    folder = ANALYSIS_FOLDERS[analysis]
    parts = rel.parts[1:] if folder else rel.parts
    if folder and rel.parts[0] != folder or not folder and (
            rel.parts[0] in ANALYSIS_FOLDERS.values()):
        return False
    if parts[0] == "logs":
        return True
    try:
        return names.parse(parts[-1])[0].get("trc") in tracers
    except ValueError:
        return False


@contextmanager
def staged_group_folder(out_dir: Path, tracers: list[str], analysis: str = "groups"
                        ) -> Iterator[Path]:
    """A new folder for this run's group results, inside ``out_dir``. It starts with the earlier
    results of the tracers and analyses this run does not do (:func:`replaced_by_run`); when
    the block ends without error it replaces ``out_dir/group`` (two renames), else it is
    removed and the earlier results stay as they were. Staging folders of runs that died are
    removed first."""
    final = out_dir / "group"
    for stale in out_dir.glob(".group-*-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    staging = out_dir / f".group-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    if final.is_dir():
        for path in final.rglob("*"):
            rel = path.relative_to(final)
            if path.is_file() and not replaced_by_run(rel, tracers, analysis):
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, staging / rel)     # files are replaced, never changed
                except OSError:
                    shutil.copy2(path, staging / rel)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = out_dir / f".group-old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_roi_atlas(spec: str, grid: Grid, labels: np.ndarray
                   ) -> tuple[np.ndarray, dict[str, list[int]]]:
    """The ROI labels on the grid and the regions (name -> label indices): the seed study's ten
    ROIs, bilateral and per hemisphere (``neuromorphometrics``), or a user's label image in MNI
    space with the TSV of its labels beside it."""
    if spec == "neuromorphometrics":
        regions = {}
        for roi in SEED_ROIS:
            regions[roi] = region_labels(roi)
            regions[f"{roi}_left"] = region_labels(roi, "left")
            regions[f"{roi}_right"] = region_labels(roi, "right")
        return labels, regions
    path = Path(spec)
    if not path.is_file():
        raise PetbindError(f"{path}: no such atlas file; give a label image in "
                           f"{names.TEMPLATE_SPACE} or 'neuromorphometrics'", EX_NOINPUT)
    table = path.with_name(path.name.removesuffix(".gz").removesuffix(".nii") + ".tsv")
    if not table.is_file():
        raise PetbindError(f"{table}: missing; the atlas needs a TSV of its labels beside it "
                           "(columns index and name)", EX_NOINPUT)
    try:
        label_names = pd.read_csv(table, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise PetbindError(f"{table}: not a readable TSV ({err})", EX_DATAERR) from None
    if not {"index", "name"} <= set(label_names.columns):
        raise PetbindError(f"{table}: needs columns 'index' and 'name'", EX_DATAERR)
    bad = [v for v in label_names["index"] if not v.strip().isdigit()]
    if bad:
        raise PetbindError(f"{table}: index {bad[0]!r} is not a whole number; the index "
                           "column holds the label values of the image", EX_DATAERR)
    twice = label_names["name"][label_names["name"].duplicated()]
    if len(twice) or (label_names["name"] == "").any():
        raise PetbindError(f"{table}: every label needs a name of its own "
                           f"({next(iter(twice), 'an empty name')!r} is not)", EX_DATAERR)
    try:
        roi_labels = atlas_on_grid(grid, nib.load(path))
    except Exception as err:
        raise PetbindError(f"{path}: not a readable label image ({err})", EX_DATAERR) from None
    regions = {str(row["name"]): [int(row["index"])] for _, row in label_names.iterrows()
               if np.any(roi_labels == int(row["index"]))}
    if not regions:
        raise PetbindError(f"{path}: none of the labels in {table.name} is inside the "
                           f"{names.TEMPLATE_SPACE} box; is the atlas in that space?",
                           EX_DATAERR)
    return roi_labels, regions


def select_participants(study: Study, smoothed: dict, unsmoothed: dict, unusable: dict
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The participants analysed (with usable maps, a group and every covariate) and those left
    out with the reason (``unusable``: participant -> why a map cannot be used), including
    participants with maps but no row in participants.tsv."""
    frame = study.participants.copy()
    frame["participant_id"] = frame["participant_id"].astype(str)
    left_out, keep = [], []
    for sub in sorted((set(smoothed) | set(unsmoothed)) - set(frame["participant_id"])):
        left_out.append({"participant_id": sub, "reason": "maps but no row in participants.tsv"})
    for _, row in frame.iterrows():
        sub = row["participant_id"]
        if sub not in smoothed or sub not in unsmoothed:
            left_out.append({"participant_id": sub, "reason": "no BPND map"})
        elif sub in unusable:
            left_out.append({"participant_id": sub, "reason": unusable[sub]})
        elif pd.isna(row[study.group]):
            left_out.append({"participant_id": sub, "reason": f"no {study.group}"})
        elif any(pd.isna(row[c]) for c in study.covariates):
            left_out.append({"participant_id": sub, "reason": "missing covariate " + ", ".join(
                c for c in study.covariates if pd.isna(row[c]))})
        else:
            keep.append(sub)
    frame = frame[frame["participant_id"].isin(keep)].reset_index(drop=True)
    frame[study.group] = frame[study.group].astype(str)
    return frame, pd.DataFrame(left_out, columns=["participant_id", "reason"])


def load_map(path: Path, grid: Grid) -> np.ndarray:
    """A participant's map, checked: a readable 3D NIfTI on the group's MNI grid with finite
    values in the brain. ValueError says why not."""
    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as err:          # nibabel and gzip raise many types for broken files
        raise ValueError(f"unreadable map {path.name} ({type(err).__name__})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.shape != grid.shape or not np.allclose(img.affine, grid.affine, atol=1e-3):
        raise ValueError(f"map {path.name} is not on the {names.TEMPLATE_SPACE} "
                         f"{grid.affine[0, 0]:g} mm grid (shape {data.shape})")
    if not np.isfinite(data).any():
        raise ValueError(f"map {path.name} has no finite value")
    return data


def load_maps(study: Study, smoothed: dict, unsmoothed: dict
              ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, str]]:
    """Each participant's smoothed and unsmoothed map, and why some cannot be used."""
    maps, unusable = {}, {}
    for sub in sorted(set(smoothed) & set(unsmoothed)):
        try:
            maps[sub] = (load_map(smoothed[sub], study.grid), load_map(unsmoothed[sub],
                                                                       study.grid))
        except ValueError as err:
            unusable[sub] = str(err)
    return maps, unusable


def read_qc(out_dir: Path, tracer: str, session: str | None) -> pd.DataFrame:
    """Every participant's QC metrics in this session (first run), one row each:
    participant_id, the metrics, and ``flagged`` (the metrics out of range, comma-separated)."""
    rows = {}
    for path in names.find(out_dir, "qc", ".tsv", trc=tracer):
        subject = path.name.split("_")[0]
        if subject in rows or session_of(path) != session:
            continue
        try:
            table = pd.read_csv(path, sep="\t")
            flagged = table.loc[table["flagged"].astype(bool), "metric"]
            rows[subject] = {"participant_id": subject,
                             **dict(zip(table["metric"], table["value"])),
                             "flagged": ", ".join(flagged)}
        except (OSError, KeyError, ValueError, pd.errors.ParserError):
            rows[subject] = {"participant_id": subject, "flagged": "unreadable QC file"}
    return pd.DataFrame(list(rows.values()))


def check_group_sizes(config: Config, study: Study, frame: pd.DataFrame, what: str
                      ) -> pd.Series:
    """The participants per group; fewer than 2 in any is an error naming participants.tsv."""
    counts = frame[study.group].value_counts()
    for level in study.levels:
        if counts.get(level, 0) < 2:
            raise PetbindError(f"{config.run.bids_dir / 'participants.tsv'}: group {level!r} of "
                               f"{study.group!r} has {counts.get(level, 0)} participant(s) with "
                               f"{what}; each group needs at least 2", EX_DATAERR)
    return counts


def corrected_label(out_dir: Path, tracer: str, model_label: str, session: str | None,
                    wanted: str | None) -> str | None:
    """The pvc- label of the maps --pvc asks for (``wanted``: "rbv", "mg", "any" or None),
    checked against the maps there are."""
    if wanted is None:
        return None
    found = sorted({names.parse(p.name)[0]["pvc"] for p in names.find(
        out_dir, "mimap", ".nii.gz", trc=tracer, space=names.TEMPLATE_SPACE, desc=None,
        model=model_label, meas="BPND", pvc="*") if session_of(p) == session})
    if wanted != "any":
        if wanted.upper() not in found:
            raise PetbindError(f"--pvc {wanted}: {out_dir} has no trc-{tracer} "
                               f"pvc-{wanted.upper()} {model_label} BPND maps; run the "
                               f"participant level with --pvc-method {wanted} "
                               "--pvc-psf-fwhm MM", EX_NOINPUT)
        return wanted.upper()
    if len(found) != 1:
        raise PetbindError(f"--pvc: {out_dir} has trc-{tracer} {model_label} maps corrected "
                           f"by {', '.join(found) or 'no method'}; " +
                           ("choose one with --pvc rbv or --pvc mg" if found else
                            "run the participant level with --pvc-method rbv --pvc-psf-fwhm "
                            "MM"), EX_NOINPUT if not found else EX_USAGE)
    return found[0]


def run_tracer(config: Config, study: Study, tracer: str, session: str | None,
               group_dir: Path) -> None:
    """One tracer in one session: maps, voxelwise analyses, ROI tables, settings and
    report."""
    settings, out_dir = config.group, config.run.output_dir
    pvc = corrected_label(out_dir, tracer, settings.model_label, session, settings.pvc)
    smoothed = find_maps(out_dir, tracer, settings.model_label, settings.smoothing_desc,
                         session, pvc)
    unsmoothed = find_maps(out_dir, tracer, settings.model_label, None, session, pvc)
    if not unsmoothed:
        return run_tracer_regional(config, study, tracer, session, group_dir)
    maps, unusable = load_maps(study, smoothed, unsmoothed)
    qc = read_qc(out_dir, tracer, session)
    if len(qc):
        write_tsv(group_dir / names.group_name(tracer, "qc", ".tsv"), qc)
        if settings.exclude_flagged:
            for _, row in qc[qc["flagged"] != ""].iterrows():
                unusable.setdefault(row["participant_id"], f"QC flagged: {row['flagged']}")
    frame, left = select_participants(study, smoothed, unsmoothed, unusable)
    counts = check_group_sizes(config, study, frame, "usable maps")
    say(config, f"trc-{tracer}: {len(frame)} participants "
        f"({', '.join(f'{k} {v}' for k, v in counts.items())}); left out: {len(left)}")
    maps_sm = np.stack([maps[s][0] for s in frame["participant_id"]])
    maps_raw = np.stack([maps[s][1] for s in frame["participant_id"]])
    write_nifti(group_dir / names.group_name(tracer, "mimap", ".nii.gz", desc="mean",
                                             meas="BPND"),
                maps_raw.mean(axis=0), study.grid.affine)
    used, skipped = voxelwise(config, study, tracer, frame, maps_sm, group_dir)
    if settings.roi_source == "regional":
        left = regional_roi_tables(config, study, tracer, session, frame, left, group_dir)
    else:
        roi_tables(study, tracer, frame, maps_raw, group_dir)
    write_tsv(group_dir / names.group_name(tracer, "participants", ".tsv", desc="leftout"), left)
    write_json(group_dir / names.group_name(tracer, "", ".json", desc="settings"), {
        **study.record(session), **settings.record(), "PermutationsUsed": used,
        "MapsPartialVolumeCorrection": pvc, "ROISourceFiles": roi_source_files(settings),
        "SkippedContrasts": skipped,
        "Inference": "cluster-level FDR (Benjamini-Hochberg over nonparametric uncorrected "
        "cluster p-values from Freedman-Lane permutations), as SPM's topological FDR but with "
        "permutation instead of random-field cluster p-values"})
    from bids_app.group_report import group_report
    report = group_report(group_dir, tracer, study.group, left, group_methods(settings, study),
                          qc)
    say(config, f"trc-{tracer}: report {report}")


def roi_source_files(settings) -> str:
    """What the ROI analysis read, for the settings file."""
    if settings.roi_source == "maps":
        return "the mean of each unsmoothed MNI map over each ROI"
    return ("regional fits, GTM-corrected (_pvc-GTM_model-SRTM_kinpar.tsv)" if settings.pvc
            else "regional fits (_model-SRTM_kinpar.tsv)")


def regional_roi_tables(config: Config, study: Study, tracer: str, session: str | None,
                        frame: pd.DataFrame, left: pd.DataFrame, group_dir: Path
                        ) -> pd.DataFrame:
    """--roi-source regional: Table 2 and Tukey on the participant level's regional SRTM fits
    (GTM-corrected with --pvc) of the participants the maps' analyses use; returns the left-out
    list with those whose fits are missing."""
    from bids_app.derivatives import REGIONAL_MODEL
    from workflows.kinetics.models import get_model

    settings = config.group
    values, unusable = regional_bpnd(config.run.output_dir, tracer,
                                     get_model(REGIONAL_MODEL).label, session,
                                     pvc="GTM" if settings.pvc else None)
    missing = [s for s in frame["participant_id"] if s not in values]
    if missing:
        what = "GTM-corrected regional fits" if settings.pvc else "regional fits"
        left = pd.concat([left, pd.DataFrame({
            "participant_id": missing, "reason": [unusable.get(s, f"no {what}")
                                                  for s in missing]})], ignore_index=True)
        frame = frame[~frame["participant_id"].isin(missing)]
    check_group_sizes(config, study, frame, "regional fits")
    # the ROI atlas's regions the fits have, else every region fitted in everyone
    regional_statistics(study, tracer, frame, values, group_dir, preferred=list(study.regions))
    return left


def regional_statistics(study: Study, tracer: str, frame: pd.DataFrame,
                        values: dict[str, pd.Series], group_dir: Path,
                        preferred: list[str] | None = None) -> list[str]:
    """Table 2 and Tukey on the regional BPND of the participants in ``frame``, in the
    ``preferred`` regions fitted in all of them (every region fitted in all when none or no
    such region); returns the regions."""
    table = pd.DataFrame([values[s] for s in frame["participant_id"]]).reset_index(drop=True)
    fitted = [r for r in table.columns if table[r].notna().all()]
    regions = [r for r in preferred or [] if r in fitted] or fitted
    roi_frame = pd.concat([frame[["participant_id", study.group] + study.covariates]
                           .reset_index(drop=True), table[regions]], axis=1)
    write_roi_statistics(study, tracer, roi_frame, regions, group_dir)
    return regions


def regional_bpnd(out_dir: Path, tracer: str, model_label: str, session: str | None,
                  pvc: str | None = None) -> tuple[dict[str, pd.Series], dict[str, str]]:
    """Each participant's regional BPND of this session (first run) from the regional fits
    (``pvc``: those with that pvc- label), and why some cannot be used."""
    from bids_app.paired import regional_fit_files

    values, unusable = {}, {}
    for path in regional_fit_files(out_dir, model_label, tracer, pvc):
        sub = path.name.split("_")[0]
        if sub in values or sub in unusable or session_of(path) != session:
            continue
        try:
            values[sub] = pd.read_csv(path, sep="\t").set_index("region")["BPND"].astype(float)
        except (KeyError, ValueError, pd.errors.ParserError):
            unusable[sub] = f"unreadable regional fits {path.name}"
    return values, unusable


def run_tracer_regional(config: Config, study: Study, tracer: str, session: str | None,
                        group_dir: Path) -> None:
    """One tracer without BPND maps (regional fits only, e.g. of PETPrep TACs): the ROI
    statistics on the regional BPND; the voxelwise analyses are skipped and listed."""
    settings, out_dir = config.group, config.run.output_dir
    values, unusable = regional_bpnd(out_dir, tracer, settings.model_label, session)
    frame, left = select_participants(study, values, values, unusable)
    left["reason"] = left["reason"].replace("no BPND map", "no regional fits")
    check_group_sizes(config, study, frame, "regional fits")
    regions = regional_statistics(study, tracer, frame, values, group_dir)  # fitted in everyone
    not_done = [f"voxelwise analyses and the mean map: no {settings.model_label} BPND maps "
                "(regional fits only)"]
    write_tsv(group_dir / names.group_name(tracer, "participants", ".tsv", desc="leftout"), left)
    write_json(group_dir / names.group_name(tracer, "", ".json", desc="settings"), {
        **study.record(session), **settings.record(), "ROISource": "regional fits (_kinpar.tsv)",
        "Skipped": not_done})
    from bids_app.group_report import group_report
    report = group_report(group_dir, tracer, study.group, left,
                          group_methods(settings, study, regional_only=True), None, not_done)
    say(config, f"trc-{tracer}: {len(frame)} participants, {len(regions)} regions from the "
        f"regional fits; skipped {not_done[0]}; report {report}")


def voxelwise(config: Config, study: Study, tracer: str, frame: pd.DataFrame,
              maps_sm: np.ndarray, group_dir: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Every analysis of :func:`group_analyses` on the smoothed maps inside the brain mask;
    returns the permutations used per contrast and the contrasts skipped with the reason."""
    settings = config.group
    mask = study.brain & np.all(np.isfinite(maps_sm), axis=0) & np.all(maps_sm != 0, axis=0)
    y = maps_sm[:, mask].astype(np.float64)
    used, skipped = {}, {}
    for analysis in group_analyses(frame, study.group, study.levels, study.reference,
                                   study.covariates, study.level_labels[study.reference]):
        contrast = analysis.contrast
        if analysis.residual_dof < 1:
            skipped[contrast.name] = (f"{analysis.x.shape[0]} participants and "
                                      f"{analysis.x.shape[1]} regressors leave no residual "
                                      "degrees of freedom")
            say(config, f"trc-{tracer}: contrast {contrast.name} skipped: "
                f"{skipped[contrast.name]}")
            continue
        inf = permutation_inference(analysis.x, y, mask, contrast, analysis.nuisance,
                                    settings.n_permutations, settings.cluster_threshold,
                                    settings.fdr_q, settings.seed)
        used[contrast.name] = inf.n_permutations
        say(config, f"trc-{tracer}: contrast {contrast.name} done ({inf.n_permutations} "
            f"permutations{', all orderings: exact test' if inf.exact else ''})")
        write_contrast(group_dir, tracer, contrast, inf, mask, study, settings.voxel_fdr)
        if settings.tfce and not contrast.is_f:
            say(config, f"trc-{tracer}: TFCE of {contrast.name} ({settings.n_permutations} "
                "permutations)")
            write_tfce(group_dir, tracer, analysis, y, mask, study.grid, inf,
                       config.run.nprocs, settings)
        write_tsv(group_dir / names.group_name(tracer, "design", ".tsv",
                                               contrast=contrast.name),
                  pd.DataFrame(analysis.x, columns=analysis.names).assign(
                      participant_id=frame["participant_id"]))
    return used, skipped


def roi_tables(study: Study, tracer: str, frame: pd.DataFrame, maps_raw: np.ndarray,
               group_dir: Path) -> None:
    """Every participant's ROI values (unsmoothed maps), Table 2 and Tukey HSD."""
    regions = study.regions
    values = roi_means(maps_raw, study.roi_labels, regions)
    roi_frame = pd.concat([frame[["participant_id", study.group] + study.covariates]
                           .reset_index(drop=True),
                           pd.DataFrame(values, columns=list(regions))], axis=1)
    write_roi_statistics(study, tracer, roi_frame, list(regions), group_dir)


def write_roi_statistics(study: Study, tracer: str, roi_frame: pd.DataFrame,
                         regions: list[str], group_dir: Path) -> None:
    """The ROI values (one row per participant), Table 2 and Tukey HSD."""
    write_tsv(group_dir / names.group_name(tracer, "bpnd", ".tsv", desc="roi"), roi_frame)
    covariates = study.covariates
    cov_sets = [[]] + ([covariates[:1]] if covariates else []) + \
        ([covariates] if len(covariates) > 1 else [])
    stats_table, tukey = table2(roi_frame, regions, study.group, study.reference, cov_sets)
    write_tsv(group_dir / names.group_name(tracer, "stats", ".tsv", desc="roi"), stats_table)
    if not tukey.empty:
        write_tsv(group_dir / names.group_name(tracer, "tukey", ".tsv", desc="roi"), tukey)


def volume(values, mask, grid, fill: float = 0.0) -> np.ndarray:
    out = np.full(grid.shape, fill, dtype=np.float32)
    out[mask] = values
    return out


def statmap(group_dir: Path, tracer: str, contrast: str, stat: str,
            desc: str | None = None) -> Path:
    return group_dir / names.group_name(tracer, "statmap", ".nii.gz", contrast=contrast,
                                        desc=desc, stat=stat)


def write_tfce(group_dir: Path, tracer: str, analysis: Analysis, y: np.ndarray,
               mask: np.ndarray, grid: Grid, inf: Inference, n_jobs: int,
               settings: GroupConfig) -> None:
    """TFCE values, their FWE p and the t map where FWE p < 0.05."""
    contrast = analysis.contrast
    tfce, p_fwe = tfce_inference(
        analysis.x, y, nib.Nifti1Image(mask.astype(np.uint8), grid.affine), contrast,
        analysis.nuisance, settings.n_permutations, settings.seed, n_jobs)
    name = contrast.name
    write_nifti(statmap(group_dir, tracer, name, "tfce"), volume(tfce, mask, grid), grid.affine)
    write_nifti(statmap(group_dir, tracer, name, "p", "tfceFWE"),
                volume(p_fwe, mask, grid, fill=1.0), grid.affine)
    write_nifti(statmap(group_dir, tracer, name, "t", "tfceFWE"),
                volume(np.where(p_fwe < 0.05, inf.stat, 0.0), mask, grid), grid.affine)


def write_contrast(group_dir: Path, tracer: str, contrast, inf: Inference, mask: np.ndarray,
                   study: Study, voxel_fdr: bool = False) -> None:
    """The contrast's statistic maps, cluster-FDR map and cluster table (and the voxel-FDR map
    when asked)."""
    grid = study.grid

    def vol(values):
        return volume(values, mask, grid)

    kind, name = ("F" if contrast.is_f else "t"), contrast.name
    write_nifti(statmap(group_dir, tracer, name, kind), vol(inf.stat), grid.affine)
    write_nifti(statmap(group_dir, tracer, name, "z"), vol(inf.z), grid.affine)
    write_nifti(statmap(group_dir, tracer, name, "p"), vol(inf.p), grid.affine)
    write_nifti(statmap(group_dir, tracer, name, "effect"), vol(inf.effect), grid.affine)
    significant = np.isin(inf.cluster_labels, np.flatnonzero(inf.cluster_significant) + 1)
    thresholded = np.where(significant, vol(inf.stat), 0.0)
    write_nifti(statmap(group_dir, tracer, name, kind, "clusterFDR"), thresholded, grid.affine)
    if voxel_fdr:
        write_nifti(statmap(group_dir, tracer, name, kind, "voxelFDR"),
                    vol(np.where(inf.voxel_fdr_significant, inf.stat, 0.0)), grid.affine)
    write_tsv(group_dir / names.group_name(tracer, "clusters", ".tsv", contrast=name),
              cluster_table(inf, vol(inf.stat), grid, study.labels))


CLUSTER_COLUMNS = ["cluster", "size_voxels", "size_mm3", "peak_stat", "peak_x", "peak_y",
                   "peak_z", "com_x", "com_y", "com_z", "p_unc", "q_fdr", "p_fwe",
                   "significant", "regions"]


def cluster_table(inf: Inference, stat_vol: np.ndarray, grid: Grid, labels: np.ndarray
                  ) -> pd.DataFrame:
    """Size, peak and centre of mass (MNI mm), p, q, FWE p and atlas regions of each
    cluster."""
    label_names = atlas_labels()
    rows = []
    for k, size in enumerate(inf.cluster_sizes, start=1):
        idx = np.argwhere(inf.cluster_labels == k)
        world = idx @ grid.affine[:3, :3].T + grid.affine[:3, 3]
        values = stat_vol[tuple(idx.T)]
        peak = world[int(np.argmax(values))]
        com = world.mean(axis=0)
        lab = labels[tuple(idx.T)]
        covered = pd.Series(lab[lab > 0]).value_counts(normalize=True)
        regions = "; ".join(f"{label_names.get(int(i), i)} {v:.0%}" for i, v in covered.items()
                            if v >= 0.05)
        rows.append({"cluster": k, "size_voxels": int(size),
                     "size_mm3": float(size * abs(np.linalg.det(grid.affine[:3, :3]))),
                     "peak_stat": float(values.max()), "peak_x": peak[0], "peak_y": peak[1],
                     "peak_z": peak[2], "com_x": com[0], "com_y": com[1], "com_z": com[2],
                     "p_unc": float(inf.cluster_p_unc[k - 1]),
                     "q_fdr": float(inf.cluster_q[k - 1]),
                     "p_fwe": float(inf.cluster_p_fwe[k - 1]),
                     "significant": bool(inf.cluster_significant[k - 1]), "regions": regions})
    return pd.DataFrame(rows, columns=CLUSTER_COLUMNS)


def group_methods(settings: GroupConfig, study: Study, regional_only: bool = False
                  ) -> list[str]:
    """The group level's methods paragraphs, from this run's settings (``regional_only``: no
    maps, the ROI statistics on the regional fits)."""
    maps = ("unsmoothed" if settings.smoothing_desc is None else
            f"smoothed (desc-{settings.smoothing_desc})")
    adjusted = (f", each without and with the covariates {', '.join(study.covariates)}"
                if study.covariates else "")
    voxel = (
        f"Group differences in BPND were tested voxel by voxel on the participants' {maps} "
        f"{settings.model_label} BPND maps in MNI152NLin2009cAsym, inside the template's brain "
        f"mask, with a general linear model: the {study.reference} group against all others "
        "pooled in both directions" + (f", and the F test over all levels of {study.group} "
                                       f"({', '.join(study.levels)})"
                                       if len(study.levels) >= 3 else "")
        + f"{adjusted}. Clusters were formed at an uncorrected voxel p < "
        f"{settings.cluster_threshold:g}. Their uncorrected p-values came from "
        f"{settings.n_permutations} Freedman-Lane permutations [@freedmanlane; @winkler2014], "
        "or from every ordering of the participants where there are no more (the exact "
        "test), and clusters were declared significant at a false discovery rate of q = "
        f"{settings.fdr_q:g} over the cluster p-values by the Benjamini-Hochberg procedure "
        "[@bh1995], as the topological FDR of SPM [@topofdr] but with permutation "
        "instead of random-field cluster p-values; cluster-level FWE p-values are reported "
        "too. ")
    if settings.voxel_fdr:
        voxel += (f"Voxel-level FDR maps (Benjamini-Hochberg at q = {settings.fdr_q:g} over the "
                  "parametric voxel p) were written as well. ")
    if settings.tfce:
        voxel += ("Threshold-free cluster enhancement with E 0.5 and H 2 [@tfce] was computed "
                  f"for the t contrasts, with FWE p-values from {settings.n_permutations} "
                  "permutations (nilearn). ")
    roi = ("Regional BPND was the mean of each participant's unsmoothed MNI map in "
           + ("the seed study's ten regions of interest [@turtonen2021], bilateral and per "
              "hemisphere, of the Neuromorphometrics atlas [@neuromorphometrics]"
              if settings.roi_atlas == "neuromorphometrics" else
              "every label of the atlas given (--roi-atlas)")
           + ". ")
    if settings.pvc:
        voxel = ("The maps were those fitted to frames corrected for partial volume voxel by "
                 "voxel at the participant level (the pvc- label in the settings file). "
                 + voxel)
    if settings.roi_source == "regional":
        roi = ("Regional BPND came from the participant level's regional SRTM fits"
               + (", corrected for partial volume by the geometric transfer matrix [@gtm]"
                  if settings.pvc else "") + ", in the regions of interest they hold. ")
    if regional_only:
        voxel = (f"No {settings.model_label} BPND maps were available (regional fits only), "
                 "so no voxelwise analysis was done. ")
        roi = ("Regional BPND came from the participant level's regional fits, in every region "
               "fitted in all participants. ")
    roi += ("Groups were compared by ANOVA (type II sums of squares; the two-class and the "
            "all-level design; without covariates, then adding them one at a time) with "
            "partial eta squared, and pairwise by Tukey's HSD [@tukey]. ")
    return [intro("group"), voxel, roi]
