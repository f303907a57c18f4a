"""The occupancy analysis's HTML report: each participant's occupancy plot, the
exposure-occupancy curve, the mean occupancy map and the tables."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import __version__, names
from bids_app.bids_io import write_text
from bids_app.boilerplate import render_html
from bids_app.group_report import _save, fraction_map_figure, plain, plt
from bids_app.reports import html_page, skipped_section


def plots_figure(regions: pd.DataFrame, participants: pd.DataFrame, path: Path) -> str:
    """Baseline - blocked against baseline BPND per region, the fitted line through the origin,
    one panel per participant (up to 40)."""
    subjects = list(participants["participant_id"])[:40]
    columns = min(5, len(subjects))
    rows = -(-len(subjects) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.6 * rows), squeeze=False)
    fits = participants.set_index("participant_id")
    for ax, sub in zip(axes.ravel(), subjects):
        mine = regions[regions["participant_id"] == sub]
        used = mine[mine["in_plot"]]
        x, y = used["bpnd_baseline"], used["bpnd_baseline"] - used["bpnd_blocked"]
        ax.scatter(x, y, s=12)
        ax.scatter(mine.loc[~mine["in_plot"], "bpnd_baseline"],
                   mine.loc[~mine["in_plot"], "bpnd_baseline"] -
                   mine.loc[~mine["in_plot"], "bpnd_blocked"], s=12, facecolors="none",
                   edgecolors="grey")
        top = float(np.nanmax(mine["bpnd_baseline"])) if len(mine) else 1.0
        line = np.array([0.0, top])
        occ = fits.loc[sub, "occupancy"]
        ax.plot(line, occ * line, "k-")
        ax.plot(line, fits.loc[sub, "intercept"] + fits.loc[sub, "slope"] * line, "k:")
        ax.set_title(f"{plain(sub)}: {occ:.2f}", fontsize=9)
        ax.set_xlabel("baseline BPND", fontsize=8)
        ax.set_ylabel("baseline - blocked", fontsize=8)
    for ax in axes.ravel()[len(subjects):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def exposure_figure(participants: pd.DataFrame, fit: pd.Series, column: str,
                    path: Path) -> str:
    data = participants[participants["exposure"] > 0]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(data["exposure"], data["occupancy"],
                yerr=[data["occupancy"] - data["occupancy_ci_low"],
                      data["occupancy_ci_high"] - data["occupancy"]], fmt="o", ms=4,
                capsize=2)
    c = np.geomspace(data["exposure"].min() / 2, data["exposure"].max() * 2, 200)
    ax.plot(c, fit["omax"] * c / (c + fit["ec50"]), "k-")
    ax.axvline(fit["ec50"], color="grey", ls=":")
    ax.set_xscale("log")
    ax.set_xlabel(plain(column))
    ax.set_ylabel("occupancy")
    ax.set_title(f"EC50 {fit['ec50']:.3g} ({fit['ec50_ci_low']:.3g} to "
                 f"{fit['ec50_ci_high']:.3g}), Omax {fit['omax']:.2f}")
    fig.tight_layout()
    return _save(fig, path)


def voxelwise_sections(folder: Path, tracer: str, figdir: Path, prefix: str) -> list[str]:
    """The mean occupancy map and the clusters where binding fell, those that were made."""
    parts = []
    mean_path = folder / names.group_name(tracer, "mimap", ".nii.gz", desc="mean",
                                          meas="occupancy")
    if mean_path.is_file():
        parts.append("<h2>Mean occupancy (smoothed maps)</h2><img src='figures/" +
                     fraction_map_figure(mean_path, figdir / f"{prefix}_mean.png",
                                         "mean occupancy") + "'>")
    contrast = "baselineGtBlocked"
    thresholded = folder / names.group_name(tracer, "statmap", ".nii.gz", contrast=contrast,
                                            desc="clusterFDR", stat="t")
    clusters_path = folder / names.group_name(tracer, "clusters", ".tsv", contrast=contrast)
    if not clusters_path.is_file():
        return parts
    clusters = pd.read_csv(clusters_path, sep="\t")
    parts.append("<h2>Where binding fell (baseline &gt; blocked, cluster-level FDR)</h2>")
    if clusters["significant"].any():
        from bids_app.group_report import glass_figure
        parts.append("<img src='figures/" + glass_figure(
            thresholded, figdir / f"{prefix}_{contrast}.png", contrast) + "'>")
    else:
        parts.append("<p>No cluster survives cluster-level FDR.</p>")
    parts.append(clusters.to_html(index=False, float_format="%.4g"))
    return parts


def occupancy_report(folder: Path, tracer: str, pair, methods: list[str],
                     exposure_column: str | None, not_done: list[str]) -> Path:
    def table(desc: str, suffix: str = "occupancy") -> pd.DataFrame:
        return pd.read_csv(folder / names.group_name(tracer, suffix, ".tsv", desc=desc),
                           sep="\t")

    figdir = folder / "figures"
    prefix = f"trc-{tracer}"
    participants, regions = table("participant"), table("region")
    parts = [f"<h1>petbind {__version__}: occupancy, {html.escape(tracer)}</h1>",
             f"<p>Baseline ses-{html.escape(pair.labels[0])}, blocked "
             f"ses-{html.escape(pair.labels[1])}; {len(participants)} participant(s), mean "
             f"occupancy {participants['occupancy'].mean():.3f}.</p>",
             "<h2>Occupancy plot per participant</h2><p>Filled: regions in the fit; line: "
             "through the origin (slope = occupancy); dotted: with an intercept.</p>"
             "<img src='figures/" + plots_figure(regions, participants,
                                                 figdir / f"{prefix}_plots.png") + "'>"]
    exposure_path = folder / names.group_name(tracer, "occupancy", ".tsv", desc="exposure")
    if exposure_path.is_file():
        fit = pd.read_csv(exposure_path, sep="\t").iloc[0]
        figure = exposure_figure(participants, fit, exposure_column or "exposure",
                                 figdir / f"{prefix}_exposure.png")
        parts.append(f"<h2>Exposure and occupancy</h2><img src='figures/{figure}'>" +
                     pd.DataFrame([fit]).to_html(index=False, float_format="%.4g"))
    parts.append(skipped_section(not_done))
    parts += voxelwise_sections(folder, tracer, figdir, prefix)
    parts.append("<h2>Regional occupancy (mean over participants)</h2>" +
                 table("regionmean").to_html(index=False, float_format="%.3f", na_rep="n/a"))
    parts.append("<h2>Participants</h2>" + participants.to_html(index=False,
                                                                float_format="%.3f",
                                                                na_rep="n/a"))
    left = table("leftout", "participants")
    parts.append("<h2>Participants left out</h2>" + (
        left.to_html(index=False) if len(left) else "<p>None.</p>"))
    parts.append("<h2>Methods</h2>" + render_html(methods))
    path = folder / names.group_name(tracer, "report", ".html")
    write_text(path, html_page(f"petbind occupancy {tracer}", parts))
    return path
