"""The group level's occupancy analysis (``--analysis occupancy``): per participant, receptor
occupancy between a baseline and a blocked session from their BPND (regional fits, or ROI means
of the MNI maps), the occupancy plot across regions, voxelwise occupancy maps, and across
participants the regional means and the exposure-occupancy curve
(:mod:`workflows.group.occupancy`). Writes to ``group/occupancy/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import names
from bids_app.bids_io import read_text_tsv, write_json, write_nifti, write_tsv
from bids_app.boilerplate import intro, write_citation
from bids_app.config import Config
from bids_app.errors import EX_DATAERR, EX_NOINPUT, EX_USAGE, PetbindError
from workflows.group.occupancy import (ExposureFit, fit_exposure_occupancy, occupancy_plot,
                                       regional_occupancy)
from bids_app.paired import (SessionPair, check_sessions, describe_columns, paired_maps,
                             paired_regional, regional_only, regional_values,
                             session_pair)
from workflows.imaging.atlas import Grid, atlas_on_grid, mni_grid

FOLDER = "occupancy"


def run_occupancy(config: Config, out_dir: Path, tracers: list[str]) -> None:
    """Every tracer's occupancy analysis, staged as the group analysis is."""
    from bids_app.group import say, staged_group_folder

    settings, pair = config.group, session_pair(config)
    check_sessions(out_dir, settings.model_label, tracers, pair)
    grid = mni_grid(settings.mni_voxel_mm)
    labels = atlas_on_grid(grid)
    with staged_group_folder(out_dir, tracers, "occupancy") as group_dir:
        for tracer in tracers:
            summary = occupancy_tracer(config, tracer, pair, grid, labels, group_dir / FOLDER)
            say(config, f"trc-{tracer}: occupancy {summary}")
        write_citation(group_dir / FOLDER / "logs", "Methods: petbind group level, occupancy",
                       occupancy_methods(config, pair, regional_only(
                           out_dir, settings.model_label, tracers)))


def read_exposures(bids_dir: Path, subjects: list[str], column: str, session: str
                   ) -> dict[str, float]:
    """Each participant's exposure in ``session``: the ``column`` of its row in
    ``sub-*_sessions.tsv``, else of participants.tsv (a value that does not change); a missing
    or non-numeric value is an error naming the file."""
    from bids_app.group import read_participants

    participants = bids_dir / "participants.tsv"
    fallback = (read_participants(bids_dir)[0].set_index("participant_id")
                if participants.is_file() else pd.DataFrame())
    out = {}
    for sub in subjects:
        path = bids_dir / sub / f"{sub}_sessions.tsv"
        table = text_table(path)
        if column in table.columns and "session_id" in table.columns:
            rows = table.loc[table["session_id"].isin([f"ses-{session}", session]), column]
            if rows.empty:
                raise PetbindError(f"{path}: no row for ses-{session}; add it with its "
                                   f"{column}", EX_DATAERR)
            value = rows.iloc[0]
        elif column in fallback.columns and sub in fallback.index:
            path, value = participants, fallback.loc[sub, column]
            value = "n/a" if pd.isna(value) else str(value)
        else:
            raise PetbindError(f"{path}: no column {column!r} for --exposure-column (nor in "
                               f"{participants.name}); add it", EX_USAGE)
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        if value.strip() in ("", "n/a") or not np.isfinite(number) or number < 0:
            raise PetbindError(f"{path}: {column} of {sub} in ses-{session} is {value!r}, not "
                               "a non-negative number; fix it", EX_DATAERR)
        out[sub] = float(number)
    return out


def text_table(path: Path) -> pd.DataFrame:
    """A TSV as text (empty where there is no file); an unreadable one is an error naming it."""
    return read_text_tsv(path) if path.is_file() else pd.DataFrame()


def occupancy_map(baseline: np.ndarray, blocked: np.ndarray, min_bpnd: float) -> np.ndarray:
    """1 - blocked / baseline where the baseline BPND reaches ``min_bpnd``; NaN elsewhere."""
    usable = np.isfinite(baseline) & np.isfinite(blocked) & (baseline >= min_bpnd)
    out = np.full(baseline.shape, np.nan, dtype=np.float32)
    out[usable] = 1.0 - blocked[usable] / baseline[usable]
    return out


def participant_row(sub: str, fit, source: str) -> dict:
    """A participant's occupancy-plot fit; the exposure is filled in later, where given."""
    return {"participant_id": sub, "occupancy": fit.occupancy,
            "occupancy_ci_low": fit.occupancy_low, "occupancy_ci_high": fit.occupancy_high,
            "slope": fit.slope, "intercept": fit.intercept,
            "intercept_ci_low": fit.intercept_low, "intercept_ci_high": fit.intercept_high,
            "intercept_p": fit.intercept_p, "n_regions": fit.n_regions,
            "regional_source": source, "exposure": np.nan}


def occupancy_tracer(config: Config, tracer: str, pair: SessionPair, grid: Grid,
                     labels: np.ndarray, folder: Path) -> str:
    """One tracer's occupancy analysis; returns a one-line summary. Without BPND maps (regional
    fits only, e.g. from PETPrep TACs) the voxelwise parts are skipped and listed as such."""
    settings, out_dir = config.group, config.run.output_dir
    label, threshold = settings.model_label, settings.min_baseline_bpnd
    descs = (None, settings.smoothing_desc)
    maps, left = paired_maps(out_dir, tracer, label, descs, pair, grid)
    if maps:
        regional = {sub: regional_values(out_dir, sub, tracer, label, pair, mine, labels)
                    for sub, mine in maps.items()}
    else:
        values, left = paired_regional(out_dir, tracer, label, pair)
        regional = {sub: (table, "regional fits") for sub, table in values.items()}
    rows, region_rows = [], []
    for sub, (values, source) in regional.items():
        try:
            plotted = values[values["baseline"] >= threshold]
            fit = occupancy_plot(plotted["baseline"], plotted["blocked"])
        except ValueError as err:
            left.append({"participant_id": sub, "reason": f"{err} (regions with baseline BPND "
                         f">= {threshold:g}; a tracer of low binding needs a lower "
                         "--min-baseline-bpnd)"})
            continue
        occ, se = regional_occupancy(values["baseline"], values["blocked"],
                                     values["baseline_se"], values["blocked_se"])
        region_rows += [{"participant_id": sub, "region": region, "bpnd_baseline": b,
                         "bpnd_blocked": k, "occupancy": o, "occupancy_se": e,
                         "in_plot": bool(b >= threshold)} for region, b, k, o, e in zip(
                            values.index, values["baseline"], values["blocked"], occ, se)]
        rows.append(participant_row(sub, fit, source))
    if not rows:
        why = f" ({left[-1]['participant_id']}: {left[-1]['reason']})" if left else ""
        raise PetbindError(f"{out_dir}: trc-{tracer} has no participant whose occupancy can be "
                           f"estimated from ses-{pair.labels[0]} and ses-{pair.labels[1]}{why}",
                           EX_NOINPUT)
    table = pd.DataFrame(rows)
    exposure_fit, skipped = exposure_curve(config, table, pair)
    voxelwise = {sub: maps[sub] for sub in table["participant_id"] if sub in maps}
    not_done = [] if voxelwise else [f"voxelwise occupancy maps and the paired test: no {label} "
                                     "BPND maps (regional fits only)"]
    if len(voxelwise) == 1:
        not_done.append("the voxelwise paired test: one participant with maps (a test across "
                        "participants needs two or more)")
    write_tables(folder, tracer, table, pd.DataFrame(region_rows), exposure_fit, skipped,
                 pd.DataFrame(left, columns=["participant_id", "reason"]), config, not_done)
    if voxelwise:
        occupancy_maps(config, tracer, voxelwise, grid, labels, folder,
                       paired_test=len(voxelwise) > 1)
    from bids_app.occupancy_report import occupancy_report
    occupancy_report(folder, tracer, pair, occupancy_methods(config, pair, not voxelwise),
                     settings.exposure_column, not_done)
    return (f"{len(table)} participant(s), mean {table['occupancy'].mean():.3f}; left out "
            f"{len(left)}" + (f"; skipped {'; '.join(not_done)}" if not_done else ""))


def occupancy_maps(config: Config, tracer: str, maps: dict, grid: Grid, labels: np.ndarray,
                   folder: Path, paired_test: bool = True) -> None:
    """Each participant's occupancy maps (unsmoothed and smoothed), their mean, and (with
    ``paired_test``) the voxelwise paired test that binding fell."""
    settings = config.group
    descs, threshold = (None, settings.smoothing_desc), settings.min_baseline_bpnd
    smoothed, differences = [], []
    for sub, mine in maps.items():
        for desc in descs:
            volume = occupancy_map(mine["baseline", desc], mine["blocked", desc], threshold)
            write_nifti(folder / names.filename(
                "mimap", ".nii.gz", sub=sub.removeprefix("sub-"), trc=tracer,
                space=names.TEMPLATE_SPACE, desc=desc, model=settings.model_label,
                meas="occupancy"), volume, grid.affine)
            if desc is not None:
                smoothed.append(volume)
        differences.append(mine["baseline", descs[1]] - mine["blocked", descs[1]])
    write_nifti(folder / names.group_name(tracer, "mimap", ".nii.gz", desc="mean",
                                          meas="occupancy"), mean_map(smoothed), grid.affine)
    if paired_test:
        binding_fell(config, tracer, np.stack(differences), grid, labels, folder)


CONTRAST = "baselineGtBlocked"


def binding_fell(config: Config, tracer: str, differences: np.ndarray, grid: Grid,
                 labels: np.ndarray, folder: Path) -> None:
    """The voxelwise paired test that BPND fell from baseline to blocked: baseline - blocked of
    the smoothed maps, sign-flip permutations, the group analysis's cluster-level FDR."""
    from bids_app.group import cluster_table
    from workflows.group.glm import sign_flip_inference
    from workflows.imaging.atlas import template_mask_on_grid

    settings = config.group
    mask = template_mask_on_grid(grid) & np.all(np.isfinite(differences), axis=0)
    inf = sign_flip_inference(differences[:, mask], mask, settings.n_permutations,
                              settings.cluster_threshold, settings.fdr_q, settings.seed)
    stat = np.zeros(grid.shape)
    stat[mask] = inf.stat
    significant = np.isin(inf.cluster_labels, np.flatnonzero(inf.cluster_significant) + 1)
    for desc, volume in ((None, stat), ("clusterFDR", np.where(significant, stat, 0.0))):
        write_nifti(folder / names.group_name(tracer, "statmap", ".nii.gz", contrast=CONTRAST,
                                              desc=desc, stat="t"), volume, grid.affine)
    write_tsv(folder / names.group_name(tracer, "clusters", ".tsv", contrast=CONTRAST),
              cluster_table(inf, stat, grid, labels))


def mean_map(volumes: list[np.ndarray]) -> np.ndarray:
    """The voxelwise mean over participants where at least half of them have a value."""
    stack = np.stack(volumes)
    count = np.isfinite(stack).sum(axis=0)
    total = np.nansum(stack, axis=0)
    return np.where(count * 2 >= len(volumes), total / np.maximum(count, 1), np.nan)


def exposure_curve(config: Config, table: pd.DataFrame, pair: SessionPair
                   ) -> tuple[ExposureFit | None, str | None]:
    """The exposure of each participant (into ``table``) and the exposure-occupancy fit, or why
    it was not fitted."""
    column = config.group.exposure_column
    if not column:
        return None, None
    doses = read_exposures(config.run.bids_dir, list(table["participant_id"]), column,
                           pair.labels[1])
    table["exposure"] = table["participant_id"].map(doses)
    try:
        return fit_exposure_occupancy(table["exposure"], table["occupancy"],
                                      config.group.fit_omax), None
    except (ValueError, np.linalg.LinAlgError) as err:
        return None, str(err)


PARTICIPANT_COLUMNS = {
    "participant_id": "participant",
    "occupancy": "fraction of receptors occupied: the slope through the origin of baseline "
                 "minus blocked BPND on baseline BPND across regions",
    "occupancy_ci_low": "lower 95 % confidence limit of occupancy",
    "occupancy_ci_high": "upper 95 % confidence limit of occupancy",
    "slope": "slope of the same regression with an intercept",
    "intercept": "intercept of the regression with an intercept (BPND units); non-zero flags "
                 "binding in the reference region that the drug does not displace",
    "intercept_ci_low": "lower 95 % confidence limit of the intercept",
    "intercept_ci_high": "upper 95 % confidence limit of the intercept",
    "intercept_p": "two-sided p of intercept = 0",
    "n_regions": "regions in the regression (baseline BPND at or above MinBaselineBPND)",
    "regional_source": "where the regional BPND came from: the participant level's regional "
                       "fits (_kinpar.tsv) or ROI means of the unsmoothed MNI maps",
    "exposure": "the --exposure-column value of the blocked session (n/a without it)",
}
REGION_COLUMNS = {
    "participant_id": "participant", "region": "region (petbind's named regions)",
    "bpnd_baseline": "BPND in the baseline session", "bpnd_blocked": "BPND in the blocked session",
    "occupancy": "1 - bpnd_blocked / bpnd_baseline",
    "occupancy_se": "standard error of occupancy from the regional fits' standard errors "
                    "(delta method; n/a where the values are ROI means of maps)",
    "in_plot": "whether the region entered the participant's occupancy regression",
}


def write_tables(folder: Path, tracer: str, table: pd.DataFrame, regions: pd.DataFrame,
                 exposure_fit: ExposureFit | None, skipped: str | None, left: pd.DataFrame,
                 config: Config, not_done: list[str]) -> None:
    def tsv(frame: pd.DataFrame, desc: str, suffix: str, columns: dict) -> None:
        describe_columns(folder / names.group_name(tracer, suffix, ".tsv", desc=desc), frame,
                         columns)

    tsv(table, "participant", "occupancy", PARTICIPANT_COLUMNS)
    tsv(regions, "region", "occupancy", REGION_COLUMNS)
    used = regions[regions["in_plot"]]
    mean = used.groupby("region", sort=False)["occupancy"].agg(["count", "mean", "std"])
    tsv(mean.reset_index().rename(columns={"count": "n", "std": "sd"}), "regionmean",
        "occupancy", {"region": "region", "n": "participants with baseline BPND at or above "
                      "MinBaselineBPND", "mean": "mean regional occupancy", "sd": "its SD"})
    if exposure_fit is not None:
        fit = exposure_fit
        tsv(pd.DataFrame([{"ec50": fit.ec50, "ec50_ci_low": fit.ec50_low,
                           "ec50_ci_high": fit.ec50_high, "omax": fit.omax,
                           "omax_se": fit.omax_se, "n": fit.n}]), "exposure", "occupancy",
            {"ec50": f"exposure ({config.group.exposure_column}) at half the maximum occupancy",
             "ec50_ci_low": "lower 95 % confidence limit (log-scale Wald)",
             "ec50_ci_high": "upper 95 % confidence limit", "omax": "maximum occupancy "
             "(1 unless --fit-omax)", "omax_se": "its standard error (n/a when fixed)",
             "n": "participants with a positive exposure"})
    write_tsv(folder / names.group_name(tracer, "participants", ".tsv", desc="leftout"), left)
    write_json(folder / names.group_name(tracer, "", ".json", desc="settings"), {
        **config.group.record(), "ExposureFitSkipped": skipped, "Skipped": not_done})


def occupancy_methods(config: Config, pair: SessionPair, regional_only: bool = False
                      ) -> list[str]:
    s = config.group
    text = (
        f"Receptor occupancy was estimated from each participant's {s.model_label} BPND in the "
        f"baseline (ses-{pair.labels[0]}) and the blocked session (ses-{pair.labels[1]}), "
        "assuming that the reference region is free of specific binding in both sessions and "
        "that the drug displaces the same fraction of receptors in every region. Regional BPND "
        "came from the participant level's regional fits where both sessions had them, else "
        "from the mean of the unsmoothed MNI maps in each region. Per region, occupancy was "
        "1 - BPND(blocked) / BPND(baseline), with standard errors from the regional fits by "
        "the delta method. Per participant, occupancy was the slope through the origin of "
        "BPND(baseline) - BPND(blocked) against BPND(baseline) across the regions with baseline "
        f"BPND of at least {s.min_baseline_bpnd:g} (a Lassen-type plot in BPND form "
        "[@cunningham2010]), with its 95 % confidence interval; the same regression with an "
        "intercept is reported too, a non-zero intercept indicating binding in the reference "
        "region that the drug does not displace. ")
    voxelwise = (
        "Voxelwise occupancy maps were computed in "
        f"MNI152NLin2009cAsym from the unsmoothed and the smoothed maps where baseline BPND "
        f"reached {s.min_baseline_bpnd:g}, and averaged across participants. Where two or "
        "more participants had maps, that binding fell was tested voxel by voxel on the "
        "differences of the smoothed maps (baseline - blocked) by a one-sample t test with "
        f"clusters at an uncorrected p < {s.cluster_threshold:g}, cluster p-values from "
        f"{s.n_permutations} random sign flips of the participants (or every flip where there "
        f"are no more) and cluster-level FDR at q = {s.fdr_q:g}. ")
    text += (f"No {s.model_label} BPND maps were available (regional fits only), so no "
             "voxelwise analysis was done. " if regional_only else voxelwise)
    if s.exposure_column:
        text += (f"Occupancy was related to exposure ({s.exposure_column}) by "
                 "occupancy = Omax C / (C + EC50), fitted by least squares with EC50 on the log "
                 "scale, " + ("Omax free" if s.fit_omax else "Omax fixed at 1") + ". ")
    return [intro("group"), text]
