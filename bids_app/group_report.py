"""Group HTML report: mean BPND map (the seed paper's Figure 1), cluster-FDR thresholded maps on a
glass brain (Figure 2), ROI values of every participant by group (Figure 3), the tables, the
design matrix and who was left out."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bids_app import __version__  # noqa: E402
from bids_app import names  # noqa: E402
from bids_app.bids_io import check_write, write_text  # noqa: E402
from bids_app.boilerplate import render_html  # noqa: E402
from bids_app.reports import html_page, skipped_section  # noqa: E402
from workflows.imaging.atlas import SEED_ROIS  # noqa: E402


def plain(text: str) -> str:
    """Text from the data as matplotlib shows it literally (``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def _save(fig, path: Path) -> str:
    check_write(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path.name


def mean_map_figure(mean_map: Path, path: Path) -> str:
    from nilearn import plotting

    display = plotting.plot_stat_map(str(mean_map), display_mode="z",
                                     cut_coords=[-20, -10, 0, 10, 20, 40], cmap="magma",
                                     colorbar=True, title="mean BPND", black_bg=False,
                                     symmetric_cbar=False, vmin=0)
    check_write(path).parent.mkdir(parents=True, exist_ok=True)
    display.savefig(str(path), dpi=80)
    display.close()
    return path.name


def fraction_map_figure(image: Path, path: Path, title: str) -> str:
    """Axial slices of a map of values from 0 to 1 (occupancy, ICC); NaN, where the value is
    not defined, shows as no colour."""
    from nilearn import plotting

    img = nib.load(image)
    shown = nib.Nifti1Image(np.nan_to_num(np.asarray(img.dataobj)), img.affine)
    display = plotting.plot_stat_map(shown, display_mode="z",
                                     cut_coords=[-20, -10, 0, 10, 20, 40], cmap="viridis",
                                     colorbar=True, title=title, black_bg=False,
                                     symmetric_cbar=False, vmin=0, vmax=1)
    check_write(path).parent.mkdir(parents=True, exist_ok=True)
    display.savefig(str(path), dpi=80)
    display.close()
    return path.name


def glass_figure(stat_map: Path, path: Path, title: str) -> str:
    from nilearn import plotting

    display = plotting.plot_glass_brain(str(stat_map), colorbar=True, title=plain(title),
                                        plot_abs=False)
    check_write(path).parent.mkdir(parents=True, exist_ok=True)
    display.savefig(str(path), dpi=80)
    display.close()
    return path.name


def roi_figure(roi_table: pd.DataFrame, group: str, regions: list[str], path: Path) -> str:
    """Every participant's ROI value by group, for up to ten regions (the seed study's ROIs when
    present)."""
    regions = ([r for r in SEED_ROIS if r in regions] or regions)[:10]
    levels = list(dict.fromkeys(roi_table[group]))
    fig, axes = plt.subplots(2, 5, figsize=(14, 6), sharey=False)
    rng = np.random.default_rng(0)
    for ax, region in zip(axes.ravel(), regions):
        for i, level in enumerate(levels):
            v = roi_table.loc[roi_table[group] == level, region].to_numpy()
            ax.scatter(i + rng.uniform(-0.15, 0.15, v.size), v, s=10)
            ax.plot([i - 0.25, i + 0.25], [np.nanmean(v)] * 2, "k-")
        ax.set_xticks(range(len(levels)), [plain(v) for v in levels], rotation=30, fontsize=7)
        ax.set_title(plain(region), fontsize=9)
    for ax in axes.ravel()[len(regions):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


MAX_PLOTTED = 10          # regions in the ROI figure (its grid)
MAX_TABLED = 20           # regions in the report's tables; the TSVs hold every region


def group_report(group_dir: Path, tracer: str, group: str, left_out: pd.DataFrame,
                 methods: list[str], qc: pd.DataFrame | None = None,
                 not_done: list[str] | None = None) -> Path:
    prefix = f"trc-{tracer}"
    figdir = group_dir / "figures"
    parts = [f"<h1>petbind {__version__}: group level, {html.escape(tracer)}</h1>"]
    if not_done:
        parts.append(skipped_section(not_done))
    else:
        parts.append("<h2>Mean BPND</h2><img src='figures/" + mean_map_figure(
            group_dir / names.group_name(tracer, "mimap", ".nii.gz", desc="mean",
                                         meas="BPND"), figdir / f"{prefix}_mean.png") + "'>")
    for thresholded in sorted(group_dir.glob(names.group_name(
            tracer, "statmap", ".nii.gz", contrast="*", desc="clusterFDR", stat="*"))):
        contrast = names.parse(thresholded.name)[0]["contrast"]
        clusters = pd.read_csv(group_dir / names.group_name(tracer, "clusters", ".tsv",
                                                            contrast=contrast), sep="\t")
        parts.append(f"<h2>Contrast {html.escape(contrast)}</h2>")
        if np.any(np.asarray(nib.load(thresholded).dataobj)):
            parts.append("<img src='figures/" + glass_figure(
                thresholded, figdir / f"{prefix}_{contrast}.png", contrast) + "'>")
        else:
            parts.append("<p>No cluster survives cluster-level FDR.</p>")
        parts.append(clusters.to_html(index=False, float_format="%.4g"))
    roi = pd.read_csv(group_dir / names.group_name(tracer, "bpnd", ".tsv", desc="roi"),
                      sep="\t")
    stats_table = pd.read_csv(group_dir / names.group_name(tracer, "stats", ".tsv", desc="roi"),
                              sep="\t")
    # the seed ROIs' per-hemisphere rows stay in the TSV; the report shows the bilateral ones
    shown = ~stats_table["region"].str.endswith(("_left", "_right"))
    regions = list(dict.fromkeys(stats_table.loc[shown, "region"]))
    # many regions (another segmentation's): the figure shows those of highest mean BPND
    plotted = (regions if len(regions) <= MAX_PLOTTED else
               list(roi[regions].mean().sort_values(ascending=False).index[:MAX_PLOTTED]))
    parts.append("<h2>ROI BPND by group</h2>" + (
        f"<p>The {MAX_PLOTTED} regions of highest mean BPND.</p>" if plotted != regions
        else "") + "<img src='figures/" + roi_figure(roi, group, plotted,
                                                     figdir / f"{prefix}_roi.png") + "'>")
    tabled, note = regions, ""
    if len(regions) > MAX_TABLED:     # the regions of smallest p of the first (plain) model
        first = stats_table[shown].groupby("region", sort=False).head(1)
        tabled = list(first.sort_values("p")["region"][:MAX_TABLED])
        note = (f"<p>{len(regions)} regions: the {MAX_TABLED} of smallest p (model "
                f"{html.escape(str(first['model'].iloc[0]))}) here, every region in "
                f"{names.group_name(tracer, 'stats', '.tsv', desc='roi')}.</p>")
    rows = stats_table[shown & stats_table["region"].isin(tabled)]
    rows = rows.iloc[np.argsort([tabled.index(r) for r in rows["region"]], kind="stable")]
    parts.append("<h2>ROI statistics (Table 2)</h2>" + note +
                 rows.to_html(index=False, float_format="%.4g"))
    tukey_path = group_dir / names.group_name(tracer, "tukey", ".tsv", desc="roi")
    if tukey_path.is_file():
        tukey = pd.read_csv(tukey_path, sep="\t")
        parts.append("<h2>Tukey HSD</h2>" + tukey[tukey["region"].isin(tabled)].to_html(
            index=False, float_format="%.4g"))
    design = sorted(group_dir.glob(names.group_name(tracer, "design", ".tsv", contrast="*")))
    if design:
        parts.append("<h2>Design matrix (" + html.escape(design[-1].name) + ")</h2>" +
                     pd.read_csv(design[-1], sep="\t").to_html(index=False,
                                                                float_format="%.3g"))
    parts.append("<h2>Participants left out</h2>" + (
        left_out.to_html(index=False) if len(left_out) else "<p>None.</p>"))
    if qc is not None and len(qc):
        flagged = qc[qc["flagged"] != ""]
        parts.append("<h2>Quality control</h2>" + (
            "<p>Scans with a QC metric out of range (each scan's report shows why):</p>" +
            flagged[["participant_id", "flagged"]].to_html(index=False) if len(flagged) else
            f"<p>No scan of the {len(qc)} flagged.</p>"))
    parts.append("<h2>Methods</h2>" + render_html(methods))
    path = group_dir / names.group_name(tracer, "report", ".html")
    write_text(path, html_page(f"petbind group {tracer}", parts))
    return path
