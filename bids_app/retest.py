"""The group level's test-retest analysis (``--analysis retest``): per named region and voxel by
voxel in MNI space, the reliability of BPND between two sessions
(:mod:`workflows.group.reliability`): variability, within-subject CV, ICC(3,1), ICC(1,1), SEM and
Bland-Altman limits. Writes to ``group/retest/``."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import __version__, names
from bids_app.bids_io import write_json, write_nifti, write_text, write_tsv
from bids_app.boilerplate import intro, render_html, write_citation
from bids_app.config import Config
from bids_app.errors import EX_NOINPUT, PetbindError
from bids_app.paired import (SessionPair, check_sessions, describe_columns, paired_maps,
                             paired_regional, regional_only, regional_values,
                             session_pair)
from workflows.group.reliability import STATISTICS, reliability
from workflows.imaging.atlas import SEED_ROIS, atlas_on_grid, mni_grid, template_mask_on_grid

FOLDER = "retest"
# the statistics mapped voxel by voxel, by their stat- label
MAPPED = {"mean": "mean", "icc31": "icc_3_1", "icc11": "icc_1_1",
          "variability": "variability_percent", "wscv": "wscv_percent"}
COLUMNS = {
    "region": "region (petbind's named regions)",
    "n": "participants with BPND in both sessions",
    "mean": "grand mean BPND of both sessions",
    "bias": "mean of retest - test BPND",
    "loa_low": "Bland-Altman lower limit of agreement: bias - 1.96 SD of the difference",
    "loa_high": "Bland-Altman upper limit of agreement: bias + 1.96 SD of the difference",
    "variability_percent": "mean over participants of |retest - test| / their mean, in percent",
    "wscv_percent": "within-subject coefficient of variation: sqrt(mean((retest - test)^2) / 2) "
                    "over the grand mean, in percent",
    "icc_3_1": "intraclass correlation ICC(3,1), two-way mixed, consistency",
    "icc_1_1": "intraclass correlation ICC(1,1), one-way random",
    "sem": "standard error of measurement, sqrt(MS_error) of the two-way ANOVA (BPND units)",
}


def run_retest(config: Config, out_dir: Path, tracers: list[str]) -> None:
    """Every tracer's test-retest analysis, staged as the group analysis is."""
    from bids_app.group import say, staged_group_folder

    settings, pair = config.group, session_pair(config)
    check_sessions(out_dir, settings.model_label, tracers, pair)
    grid = mni_grid(settings.mni_voxel_mm)
    labels, brain = atlas_on_grid(grid), template_mask_on_grid(grid)
    with staged_group_folder(out_dir, tracers, "retest") as group_dir:
        for tracer in tracers:
            folder = group_dir / FOLDER
            maps, left = paired_maps(out_dir, tracer, settings.model_label,
                                     (None, settings.smoothing_desc), pair, grid)
            if maps:
                regional = regional_table(config, tracer, pair, maps, labels)
            else:
                values, left = paired_regional(out_dir, tracer, settings.model_label, pair)
                regional = long_table(values, pair, "regional fits")
            n = regional["participant_id"].nunique() if len(regional) else 0
            if n < 2:
                raise PetbindError(f"{out_dir}: trc-{tracer} has {n} participant(s) with BPND "
                                   f"of both ses-{pair.labels[0]} and ses-{pair.labels[1]}; "
                                   "test-retest needs 2 or more", EX_NOINPUT)
            table = region_statistics(regional)
            describe_columns(folder / names.group_name(tracer, "retest", ".tsv", desc="region"),
                             table, COLUMNS)
            describe_columns(folder / names.group_name(tracer, "retest", ".tsv", desc="values"),
                             regional, VALUE_COLUMNS)
            not_done = [] if maps else [f"reliability maps: no {settings.model_label} BPND "
                                        "maps (regional fits only)"]
            if maps:
                write_maps(folder, tracer, maps, settings.smoothing_desc, brain, grid)
            write_tsv(folder / names.group_name(tracer, "participants", ".tsv", desc="leftout"),
                      pd.DataFrame(left, columns=["participant_id", "reason"]))
            write_json(folder / names.group_name(tracer, "", ".json", desc="settings"),
                       {**settings.record(), "Skipped": not_done})
            retest_report(folder, tracer, pair, regional, table,
                          retest_methods(config, pair, not maps), settings.smoothing_desc,
                          not_done)
            say(config, f"trc-{tracer}: test-retest of {n} participants; median ICC(3,1) "
                f"{np.nanmedian(table['icc_3_1']):.2f}; left out {len(left)}"
                + (f"; skipped {'; '.join(not_done)}" if not_done else ""))
        write_citation(group_dir / FOLDER / "logs", "Methods: petbind group level, test-retest",
                       retest_methods(config, pair, regional_only(
                           out_dir, settings.model_label, tracers)))


VALUE_COLUMNS = {"participant_id": "participant", "region": "region",
                 "bpnd_test": "BPND in the test session",
                 "bpnd_retest": "BPND in the retest session",
                 "regional_source": "the participant level's regional fits (_kinpar.tsv) or ROI "
                                    "means of the unsmoothed MNI maps"}


def regional_table(config: Config, tracer: str, pair: SessionPair, maps: dict,
                   labels: np.ndarray) -> pd.DataFrame:
    """Every participant's regional BPND in both sessions (long form)."""
    rows = []
    for sub, mine in maps.items():
        values, source = regional_values(config.run.output_dir, sub, tracer,
                                         config.group.model_label, pair, mine, labels)
        rows.append(long_table({sub: values}, pair, source))
    return pd.concat(rows, ignore_index=True)


def long_table(values: dict[str, pd.DataFrame], pair: SessionPair, source: str
               ) -> pd.DataFrame:
    """Participants' regional tables (index region, a column per role) in long form."""
    rows = [{"participant_id": sub, "region": region, "bpnd_test": t, "bpnd_retest": r,
             "regional_source": source}
            for sub, table in values.items()
            for region, t, r in zip(table.index, table[pair.roles[0]], table[pair.roles[1]])]
    return pd.DataFrame(rows, columns=list(VALUE_COLUMNS))


def region_statistics(regional: pd.DataFrame) -> pd.DataFrame:
    """The reliability statistics of each region over participants."""
    test = regional.pivot(index="participant_id", columns="region", values="bpnd_test")
    retest = regional.pivot(index="participant_id", columns="region", values="bpnd_retest")
    regions = list(dict.fromkeys(regional["region"]))
    test, retest = test[regions], retest[regions]
    stats = reliability(test.to_numpy(), retest.to_numpy())
    n = (test.notna() & retest.notna()).sum().to_numpy()
    return pd.DataFrame({"region": regions, "n": n, **{k: stats[k] for k in STATISTICS}})


def write_maps(folder: Path, tracer: str, maps: dict, desc: str | None, brain: np.ndarray,
               grid) -> None:
    """Voxelwise reliability of the maps the group GLM uses (``desc``), in the brain mask."""
    subjects = list(maps)
    test = np.stack([maps[s]["test", desc][brain] for s in subjects])
    retest = np.stack([maps[s]["retest", desc][brain] for s in subjects])
    stats = reliability(test, retest)
    for label, key in MAPPED.items():
        volume = np.full(grid.shape, np.nan, dtype=np.float32)
        volume[brain] = stats[key]
        write_nifti(folder / names.group_name(tracer, "statmap", ".nii.gz", desc=desc,
                                              stat=label), volume, grid.affine)


def bland_altman_figure(regional: pd.DataFrame, table: pd.DataFrame, path: Path) -> str:
    from bids_app.group_report import _save, plain, plt

    # the seed's ROIs, else (another segmentation's regions) the ten of highest mean BPND
    regions = [r for r in SEED_ROIS if r in set(table["region"])] or list(
        table.sort_values("mean", ascending=False)["region"])
    regions = regions[:10]
    fig, axes = plt.subplots(2, 5, figsize=(15, 6), squeeze=False)
    stats = table.set_index("region")
    for ax, region in zip(axes.ravel(), regions):
        mine = regional[regional["region"] == region]
        mean = (mine["bpnd_test"] + mine["bpnd_retest"]) / 2
        ax.scatter(mean, mine["bpnd_retest"] - mine["bpnd_test"], s=12)
        for key, style in (("bias", "k-"), ("loa_low", "k:"), ("loa_high", "k:")):
            ax.axhline(stats.loc[region, key], color="k", ls=style[1:], lw=1)
        ax.set_title(f"{plain(region)}: ICC {stats.loc[region, 'icc_3_1']:.2f}", fontsize=9)
        ax.set_xlabel("mean BPND", fontsize=8)
        ax.set_ylabel("retest - test", fontsize=8)
    for ax in axes.ravel()[len(regions):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def retest_report(folder: Path, tracer: str, pair: SessionPair, regional: pd.DataFrame,
                  table: pd.DataFrame, methods: list[str], desc: str | None,
                  not_done: list[str]) -> Path:
    from bids_app.group_report import fraction_map_figure
    from bids_app.reports import html_page

    figdir, prefix = folder / "figures", f"trc-{tracer}"
    icc_map = folder / names.group_name(tracer, "statmap", ".nii.gz", desc=desc, stat="icc31")
    left = pd.read_csv(folder / names.group_name(tracer, "participants", ".tsv",
                                                 desc="leftout"), sep="\t")
    parts = [f"<h1>petbind {__version__}: test-retest, {html.escape(tracer)}</h1>",
             f"<p>Test ses-{html.escape(pair.labels[0])}, retest "
             f"ses-{html.escape(pair.labels[1])}; "
             f"{regional['participant_id'].nunique()} participants.</p>",
             "<h2>Bland-Altman plots</h2><p>Line: bias; dotted: limits of agreement.</p>"
             "<img src='figures/" + bland_altman_figure(regional, table,
                                                        figdir / f"{prefix}_blandaltman.png") +
             "'>", "<h2>Reliability per region</h2>" +
             table.to_html(index=False, float_format="%.3f"),
             "<h2>ICC(3,1) voxel by voxel</h2>" + (
                 "<ul>" + "".join(f"<li>Skipped: {html.escape(n)}</li>" for n in not_done)
                 + "</ul>" if not_done else "<img src='figures/" + fraction_map_figure(
                     icc_map, figdir / f"{prefix}_icc.png", "ICC(3,1)") + "'>"),
             "<h2>Participants left out</h2>" + (left.to_html(index=False) if len(left)
                                                  else "<p>None.</p>"),
             "<h2>Methods</h2>" + render_html(methods)]
    path = folder / names.group_name(tracer, "report", ".html")
    write_text(path, html_page(f"petbind test-retest {tracer}", parts))
    return path


def retest_methods(config: Config, pair: SessionPair, regional_only: bool = False
                   ) -> list[str]:
    s = config.group
    maps = "unsmoothed" if s.smoothing_desc is None else f"smoothed (desc-{s.smoothing_desc})"
    where = ("in every region of the participant level's regional fits (no BPND maps were "
             "available, so no voxelwise analysis was done)" if regional_only else
             "in every named region (the participant level's regional fits where both sessions "
             "had them, else the mean of the unsmoothed MNI maps in the region) and voxel by "
             f"voxel on the {maps} maps in MNI152NLin2009cAsym")
    return [intro("group"), (
        f"Test-retest reliability of {s.model_label} BPND was assessed between ses-"
        f"{pair.labels[0]} and ses-{pair.labels[1]} {where}: "
        "absolute variability (|retest - test| over their mean, averaged over participants), "
        "the within-subject coefficient of variation, the intraclass correlations ICC(3,1) "
        "and ICC(1,1) [@shroutfleiss] from the two-way and one-way ANOVA mean squares, the "
        "standard error of measurement, and Bland-Altman bias and limits of agreement "
        "[@blandaltman].")]
