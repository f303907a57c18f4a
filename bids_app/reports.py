"""Per-scan HTML report: motion, coregistration, reference region, TACs with fits, BPND map,
warnings and a methods paragraph. Figures are PNG files beside the report."""

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
from workflows.imaging.atlas import SEED_ROIS  # noqa: E402
from workflows.imaging.motion import motion_estimated  # noqa: E402
from workflows.imaging.qc import flagged_messages  # noqa: E402
from workflows.imaging.tacs import read_tacs_table  # noqa: E402
from workflows.kinetics.frames import FrameTiming  # noqa: E402
from workflows.kinetics.metadata import PETMetadata  # noqa: E402
from workflows.kinetics.model import SE_SUFFIX  # noqa: E402
from workflows.kinetics.models import get_model  # noqa: E402



def _slices(volume: np.ndarray) -> list[np.ndarray]:
    c = [s // 2 for s in volume.shape[:3]]
    return [np.rot90(volume[c[0]]), np.rot90(volume[:, c[1]]), np.rot90(volume[:, :, c[2]])]


def _save(fig, path: Path) -> str:
    check_write(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path.name


def motion_figure(motion_tsv: str, timing: FrameTiming, path: Path) -> str:
    table = pd.read_csv(motion_tsv, sep="\t", na_values=["n/a"])
    t = timing.mid_min
    fig, ax = plt.subplots(1, 2, figsize=(10, 3))
    if not motion_estimated(table):                        # realigned elsewhere, no estimates
        for a in ax:
            a.text(0.5, 0.5, "no motion estimates\n(realigned by the preprocessing tool)",
                   ha="center", va="center", transform=a.transAxes)
            a.axis("off")
        return _save(fig, path)
    for c in ("trans_x", "trans_y", "trans_z"):
        ax[0].plot(t, table[c], marker="o", label=c)
    ax[0].axhspan(-1, 1, color="0.9")
    ax[0].set(xlabel="time (min)", ylabel="mm", title="translation")
    for c in ("rot_x", "rot_y", "rot_z"):
        ax[1].plot(t, table[c], marker="o", label=c)
    ax[1].axhspan(-0.05, 0.05, color="0.9")
    ax[1].set(xlabel="time (min)", ylabel="rad", title="rotation")
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    return _save(fig, path)


def overlay_figure(background: str, overlay: str, path: Path, title: str,
                   contour: bool = False) -> str:
    bg = np.asarray(nib.load(background).dataobj, dtype=float)
    ov = np.asarray(nib.load(overlay).dataobj, dtype=float)
    if ov.ndim == 4:
        ov = ov.mean(axis=3)
    fig, ax = plt.subplots(1, 3, figsize=(10, 3.5))
    for a, b, o in zip(ax, _slices(bg), _slices(ov)):
        a.imshow(b, cmap="gray")
        if contour:
            a.contour(o > 0.5, levels=[0.5], colors="r", linewidths=0.8)
        else:
            a.imshow(np.ma.masked_less_equal(o, np.percentile(o[o > 0], 30) if np.any(o > 0)
                                             else 0), cmap="hot", alpha=0.45)
        a.axis("off")
    fig.suptitle(title)
    return _save(fig, path)


def plotted_regions(kin: pd.DataFrame, n: int = 6) -> list[str]:
    """The seed study's ROIs where the fits name them; else ``n`` regions spread over the range
    of BPND (its highest and lowest among them), so that any segmentation's TACs are shown."""
    seed = [r for r in SEED_ROIS if r in kin.index]
    if seed:
        return seed[:n]
    usable = ~kin["on_bound"].astype(bool) if "on_bound" in kin else True
    ranked = kin.loc[usable, "BPND"].dropna().sort_values()
    picks = np.unique(np.linspace(0, len(ranked) - 1, min(n, len(ranked))).round().astype(int))
    return list(ranked.index[picks[::-1]])


def tac_figure(tacs_tsv: str, kinpar_tsv: str, reference: str, model: str, path: Path) -> str:
    """The reference TAC and up to six regions' TACs (:func:`plotted_regions`) with the
    regional model's curves."""
    timing, tacs = read_tacs_table(tacs_tsv)
    kin = pd.read_csv(kinpar_tsv, sep="\t").set_index("region")
    kinetic = get_model(model)
    ref = tacs[reference].to_numpy()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(timing.mid_min, ref, "k.-", label=f"{reference} (reference)")
    for region in plotted_regions(kin):
        row = kin.loc[region]
        line, = ax.plot(timing.mid_min, tacs[region], "o", ms=3)
        curve = kinetic.fitted(timing, ref, row.to_dict()) if np.isfinite(row["BPND"]) else None
        if curve is not None:
            ax.plot(timing.mid_min, curve, "-", color=line.get_color(),
                    label=f"{region} BPND {row['BPND']:.2f}")
    ax.set(xlabel="time (min)", ylabel="activity (decay-corrected)",
           title=f"TACs and {kinetic.label} fits")
    ax.legend(fontsize=7)
    return _save(fig, path)


def map_figure(bpnd_mni: str, path: Path) -> str:
    data = np.asarray(nib.load(bpnd_mni).dataobj, dtype=float)
    fig, ax = plt.subplots(1, 3, figsize=(10, 3.5))
    vmax = np.percentile(data[data > 0], 99) if np.any(data > 0) else 1
    for a, s in zip(ax, _slices(data)):
        im = a.imshow(s, cmap="magma", vmin=0, vmax=vmax)
        a.axis("off")
    fig.colorbar(im, ax=ax, shrink=0.7, label="BPND")
    fig.suptitle("BPND in MNI152NLin2009cAsym")
    return _save(fig, path)


def contour_figure(background: str, layers: list[tuple[np.ndarray, str]], path: Path,
                   title: str) -> str:
    """Three orthogonal slices of ``background`` with the outlines of binary ``layers``
    (volume on the same grid, colour)."""
    bg = np.asarray(nib.load(background).dataobj, dtype=float)
    fig, ax = plt.subplots(1, 3, figsize=(10, 3.5))
    vmax = np.percentile(bg[bg > 0], 99) if np.any(bg > 0) else 1.0
    for k, a in enumerate(ax):
        a.imshow(_slices(bg)[k], cmap="gray", vmin=0, vmax=vmax)
        for volume, colour in layers:
            a.contour(_slices(volume.astype(float))[k], levels=[0.5], colors=colour,
                      linewidths=0.7)
        a.axis("off")
    fig.suptitle(title)
    return _save(fig, path)


def label_edges(labels: np.ndarray) -> np.ndarray:
    """Voxels where the label changes to a neighbour's (the outlines of every region)."""
    edges = np.zeros(labels.shape, dtype=bool)
    for axis in range(3):
        change = np.diff(labels, axis=axis) != 0
        index = [slice(None)] * 3
        index[axis] = slice(1, None)
        edges[tuple(index)] |= change
    return edges & (labels > 0)


def anatomy_figures(products: dict, figdir: Path, scan_name: str) -> dict[str, str]:
    """The reportlets where anatomical failures show: the brain mask and tissues on the T1w,
    the normalised T1w under the template's outlines, the atlas regions on the mean PET."""
    from workflows.imaging.atlas import mni_grid, template_on_grid
    dseg = np.asarray(nib.load(products["dseg"]).dataobj)
    mask = np.asarray(nib.load(products["brain_mask"]).dataobj) > 0.5
    tpl = template_on_grid(mni_grid(float(abs(nib.load(products["t1w_mni"]).affine[0, 0]))))
    tpl_brain = tpl > 5                          # as atlas.template_mask_on_grid
    wm_edge = tpl > 0.8 * np.percentile(tpl[tpl_brain], 90)
    atlas = np.asarray(nib.load(products["atlas_pet"]).dataobj).round().astype(int)
    return {
        "Brain mask (red) and tissues (grey matter yellow, white matter blue) on the T1w":
            contour_figure(products["t1w_preproc"], [(mask, "r"), (dseg >= 2, "y"),
                                                     (dseg == 3, "c")],
                           figdir / f"{scan_name}_brainmask.png", "brain mask and tissues"),
        "Normalised T1w under the template's brain (red) and white-matter (blue) outlines":
            contour_figure(products["t1w_mni"], [(tpl_brain, "r"), (wm_edge, "c")],
                           figdir / f"{scan_name}_normalisation.png", "normalisation"),
        "Atlas regions on the mean PET": contour_figure(
            products["petref"], [(label_edges(atlas), "y")], figdir / f"{scan_name}_atlas.png",
            "Neuromorphometrics regions in PET space"),
    }


MAX_LISTED_WARNINGS = 5       # regional fits on a bound listed one by one, up to this many


def scan_warnings(qc_tsv: str | None, kinpar_tsv: str) -> list[str]:
    """Warnings of a scan: every flagged QC metric (anatomy, coregistration, reference region,
    fits on a bound, head motion), and each regional fit on a bound."""
    out = flagged_messages(pd.read_csv(qc_tsv, sep="\t")) if qc_tsv else []
    kin = pd.read_csv(kinpar_tsv, sep="\t", keep_default_na=False, na_values=["n/a"])
    bound = kin[kin["on_bound"].astype(bool)]
    if len(bound) > MAX_LISTED_WARNINGS:          # one line, not a screenful
        out.append(f"regional SRTM on a bound in {len(bound)} of {len(kin)} regions ("
                   f"{', '.join(bound['region'][:MAX_LISTED_WARNINGS])}, ...): see the table")
        return out
    for _, row in bound.iterrows():
        out.append(f"regional SRTM for {row['region']}: {row['warnings']}")
    return out


def scan_report(output_dir: str, scan: dict, products: dict) -> str:
    """The scan's HTML report (``<scan>.html`` in the output folder, figures beside it);
    ``scan``: the record of :func:`bids_app.participant.scan_record`."""
    out = Path(output_dir)
    entities = names.ScanEntities(scan["subject"], scan["session"], scan["tracer"], scan["run"])
    scan_name = entities.prefix
    figdir = out / "figures" / f"sub-{scan['subject']}"
    reference_region = scan["reference_region"]
    timing = PETMetadata.from_record(scan["metadata"]).timing
    figs = {
        **anatomy_figures(products, figdir, scan_name),
        "Head motion": motion_figure(products["motion_tsv"], timing,
                                     figdir / f"{scan_name}_motion.png"),
        "PET on T1w (coregistration)": overlay_figure(
            products["t1w_preproc"], products["petref_t1w"], figdir / f"{scan_name}_coreg.png",
            "PET on T1w"),
        f"Reference region ({reference_region}) on the mean PET": overlay_figure(
            products["petref"], products["reference_mask"],
            figdir / f"{scan_name}_reference.png", "reference region", contour=True),
        "TACs and regional SRTM fits": tac_figure(
            products["tacs"], products["kinpar"], reference_region, "srtm",
            figdir / f"{scan_name}_tacs.png"),
    }
    for i, model in enumerate(scan["models"]):           # one BPND map per voxelwise model
        label = get_model(model).label
        figs[f"BPND map ({label})"] = map_figure(
            products[f"{model.replace('-', '_')}_mni"][0],
            figdir / f"{scan_name}{'' if i == 0 else f'_model-{label}'}_bpnd.png")
        corrected = products.get(f"pvc_{model.replace('-', '_')}_mni")
        if corrected:                                   # and its partial-volume-corrected map
            method = scan["pvc_method"].upper()
            figs[f"BPND map ({label}), partial-volume corrected ({method})"] = map_figure(
                corrected[0], figdir / f"{scan_name}{'' if i == 0 else f'_model-{label}'}"
                f"_pvc-{method}_bpnd.png")
    warnings = scan_warnings(products["qc"], products["kinpar"])
    kin = pd.read_csv(products["kinpar"], sep="\t", keep_default_na=False, na_values=["n/a"])
    elsewhere = scan.get("preprocessed")
    parts = [f"<h1>petbind {__version__}: {html.escape(scan_name)}</h1>",
             *([f"<p>PET preprocessed by {html.escape(elsewhere['source'])}: "
                f"{html.escape(elsewhere['pet'])} (motion-corrected, in T1w space; petbind "
                "did not realign or coregister it again).</p>"] if elsewhere else []),
             *([f"<p>T1w normalised to {names.TEMPLATE_SPACE} by the transforms of "
                f"{html.escape(given['source'])}: {html.escape(given['t1w2mni'])}.</p>"]
               if (given := scan.get("normalisation")) else []),
             "<h2>Warnings</h2>",
             "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>"
             if warnings else "<p>None.</p>"]
    for title, name in figs.items():
        parts.append(f"<h2>{html.escape(title)}</h2>"
                     f"<img src='figures/sub-{scan['subject']}/{name}'>")
    kin = kin.rename(columns=lambda c: f"{c} (%)" if c.endswith(SE_SUFFIX) else c)
    parts.append("<h2>Regional SRTM</h2>" + kin.to_html(index=False, float_format="%.3f"))
    parts.append("<h2>Quality control</h2>" + pd.read_csv(products["qc"], sep="\t").to_html(
        index=False, float_format="%.4g", na_rep=""))
    parts.append("<h2>Methods</h2>" + render_html(scan["methods"]))
    path = out / names.report_name(entities)
    write_text(path, html_page(scan_name, parts))
    return str(path)


def regional_report(output_dir: str, scan: dict, products: dict) -> str:
    """The report of a scan whose TACs were made elsewhere (PETPrep): where they came from,
    warnings, the TACs with the SRTM fits, every model's BPND per region, QC and methods;
    ``products["written"]``: the files of the uncorrected table's writer."""
    from bids_app.petprep import tac_report_name

    out = Path(output_dir)
    entities = names.ScanEntities(scan["subject"], scan["session"], scan["tracer"], scan["run"])
    report_name = tac_report_name(scan)             # beside the image's report if it has one
    scan_name = report_name.removesuffix(".html")
    written = [Path(p) for p in products["written"]]
    tacs = next(p for p in written if p.name.endswith("_tacs.tsv"))
    kinpars = {p.name.split("_model-")[1].split("_")[0]: p for p in written
               if p.name.endswith("_kinpar.tsv")}
    qc = next((p for p in written if p.name.endswith("_qc.tsv")), None)  # uncorrected only
    table, reference = scan["table"], scan["reference"]
    figure = tac_figure(str(tacs), str(kinpars["SRTM"]), reference["name"], "srtm",
                        out / "figures" / f"sub-{scan['subject']}" / f"{scan_name}_tacs.png")
    warnings = scan_warnings(str(qc) if qc else None, str(kinpars["SRTM"]))
    source = scan["provenance"]
    left_out = table["left_out"]
    facts = {
        "TACs": f"{table['path']} (seg-{scan['seg']}; {source['PreprocessedBy']})",
        "Reference region": f"{reference['name']}: {', '.join(reference['labels'])} "
                            f"({reference['weighting']})",
        "Times": f"from injection: the table's times minus InjectionStart "
                 f"{table['shift_s']:g} s" + (f"; {table['first_frame']} frame(s) before "
                                               "injection dropped" if table["first_frame"]
                                               else ""),
        "Regions fitted": str(len(table["regions"])),
        "Regions left out": ", ".join(f"{r} ({why})" for r, why in left_out.items()) or "none",
    }
    bpnd = pd.DataFrame({label: pd.read_csv(path, sep="\t").set_index("region")["BPND"]
                         for label, path in kinpars.items()})
    parts = [f"<h1>petbind {__version__}: {html.escape(scan_name)}</h1>",
             "<p>Regional kinetic modelling of time-activity curves preprocessed elsewhere"
             + (f" (the maps from its images: {html.escape(entities.prefix)}.html; the scan's "
                "quality control is there).</p>" if scan.get("with_image") else
                " (no images).</p>"),
             "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                                 for k, v in facts.items()) + "</table>",
             "<h2>Warnings</h2>",
             "<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>"
             if warnings else "<p>None.</p>",
             "<h2>TACs and regional SRTM fits</h2>"
             f"<img src='figures/sub-{scan['subject']}/{figure}'>",
             "<h2>BPND by model</h2>" + bpnd.reset_index().to_html(
                 index=False, float_format="%.3f", na_rep="n/a"),
             "<h2>Quality control</h2>" + (pd.read_csv(qc, sep="\t").to_html(
                 index=False, float_format="%.4g", na_rep="") if qc else "<p>None.</p>"),
             "<h2>Methods</h2>" + render_html(scan["methods"])]
    path = out / report_name
    write_text(path, html_page(scan_name, parts))
    return str(path)


def skipped_section(not_done: list[str]) -> str:
    """The analyses a run could not do, with why ("" when none)."""
    return ("<h2>Skipped</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in not_done)
            + "</ul>") if not_done else ""


def html_page(title: str, parts: list[str]) -> str:
    """A self-contained HTML page around report sections."""
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(title) +
            "</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
            "img{max-width:100%}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>" +
            "\n".join(parts) + "</body></html>")
