"""The group level: voxelwise GLM with permutation cluster-level FDR, and the ROI tables."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_app.bids_io import write_json, write_nifti, write_tsv
from bids_app.errors import EX_DATAERR, EX_NOINPUT, EX_USAGE, PetbindError
from workflows.atlas import (SEED_ROIS, TEMPLATE_SPACE, atlas_labels, atlas_on_grid, mni_grid,
                             region_labels, template_mask_on_grid)
from workflows.group.glm import Contrast, permutation_inference, tfce_inference
from workflows.group.roi import roi_means, table2


def say(settings, message: str) -> None:
    if settings.verbosity >= 0:
        print(f"petbind group: {message}", file=sys.stderr, flush=True)


def read_participants(bids_dir: Path) -> tuple[pd.DataFrame, dict]:
    path = bids_dir / "participants.tsv"
    if not path.is_file():
        raise PetbindError(f"{path}: missing; the group level needs participants.tsv with a "
                           "group column", EX_NOINPUT)
    table = pd.read_csv(path, sep="\t", dtype={"participant_id": str})
    meta_path = bids_dir / "participants.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return table, meta


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


def find_maps(output_dir: Path, tracer: str, desc: str | None) -> dict[str, Path]:
    pattern = (f"sub-*/**/sub-*_trc-{tracer}_space-{TEMPLATE_SPACE}" +
               (f"_desc-{desc}" if desc else "") + "_model-SRTM_meas-BPND_mimap.nii.gz")
    out = {}
    for path in sorted(output_dir.glob(pattern)):
        subject = path.name.split("_")[0]
        out.setdefault(subject, path)  # first session only
    return out


def tracers_in(output_dir: Path) -> list[str]:
    found = set()
    for path in output_dir.glob(f"sub-*/**/*_space-{TEMPLATE_SPACE}_model-SRTM_meas-BPND_"
                                "mimap.nii.gz"):
        for part in path.name.split("_"):
            if part.startswith("trc-"):
                found.add(part[4:])
    return sorted(found)


def design_matrix(frame: pd.DataFrame, group: str, levels: list[str], reference: str,
                  covariates: list[str], three_class: bool) -> tuple[np.ndarray, list[str]]:
    cols = [np.ones(len(frame))]
    names = ["intercept"]
    if three_class:
        for level in levels[1:]:
            cols.append((frame[group] == level).to_numpy(float))
            names.append(f"group[{level}]")
    else:
        cols.append((frame[group] == reference).to_numpy(float))
        names.append(f"group[{reference}]")
    for c in covariates:
        if frame[c].dtype.kind in "fi":
            v = frame[c].to_numpy(float)
            cols.append(v - v.mean())
            names.append(c)
        else:
            for level in sorted(frame[c].unique())[1:]:
                cols.append((frame[c] == level).to_numpy(float))
                names.append(f"{c}[{level}]")
    return np.column_stack(cols), names


def run_group(settings, args) -> int:
    bids_dir, out_dir = settings.bids_dir, settings.output_dir
    participants, meta = read_participants(bids_dir)
    group = choose_group_column(participants, meta, args.group_column,
                                bids_dir / "participants.tsv")
    levels = [str(v) for v in dict.fromkeys(participants[group].dropna().astype(str))]
    if isinstance(meta.get(group, {}).get("Levels"), dict):
        listed = [str(v) for v in meta[group]["Levels"] if str(v) in levels]
        levels = listed + [v for v in levels if v not in listed]
    reference = args.reference_group or levels[0]
    if reference not in levels:
        raise PetbindError(f"--reference-group {reference!r} is not a level of {group!r} "
                           f"({', '.join(levels)})", EX_USAGE)
    covariates = args.covariates if args.covariates is not None else [
        c for c in ("age", "sex") if c in participants.columns]
    missing = [c for c in covariates if c not in participants.columns]
    if missing:
        raise PetbindError(f"{bids_dir / 'participants.tsv'}: no column(s) "
                           f"{', '.join(missing)} for --covariates", EX_USAGE)
    tracers = settings.tracers or tracers_in(out_dir)
    if not tracers:
        raise PetbindError(f"{out_dir}: no participant-level BPND maps in "
                           f"{TEMPLATE_SPACE}; run the participant level first", EX_NOINPUT)
    group_dir = out_dir / "group"
    grid = mni_grid(settings.mni_voxel_mm)
    labels = atlas_on_grid(grid)
    brain = template_mask_on_grid(grid)
    desc = None if args.smoothing == "none" else args.smoothing
    roi_atlas = read_roi_atlas(args.roi_atlas, grid)
    for tracer in tracers:
        run_tracer(settings, args, tracer, participants, group, levels, reference, covariates,
                   group_dir, grid, labels, brain, desc, roi_atlas)
    return 0


def read_roi_atlas(spec: str, grid) -> tuple[np.ndarray, dict[str, list[int]]] | None:
    """None for the built-in seed ROIs, else a user's label image on the grid and its regions
    (name -> [index]) from the TSV beside it."""
    if spec == "neuromorphometrics":
        return None
    path = Path(spec)
    if not path.is_file():
        raise PetbindError(f"{path}: no such atlas file; give a label image in {TEMPLATE_SPACE} "
                           "or 'neuromorphometrics'", EX_NOINPUT)
    table = path.with_name(path.name.removesuffix(".gz").removesuffix(".nii") + ".tsv")
    if not table.is_file():
        raise PetbindError(f"{table}: missing; the atlas needs a TSV of its labels beside it "
                           "(columns index and name)", EX_NOINPUT)
    names = pd.read_csv(table, sep="\t")
    if not {"index", "name"} <= set(names.columns):
        raise PetbindError(f"{table}: needs columns 'index' and 'name'", EX_DATAERR)
    try:
        labels = atlas_on_grid(grid, nib.load(path))
    except Exception as err:
        raise PetbindError(f"{path}: not a readable label image ({err})", EX_DATAERR) from None
    regions = {str(row["name"]): [int(row["index"])] for _, row in names.iterrows()
               if np.any(labels == int(row["index"]))}
    if not regions:
        raise PetbindError(f"{path}: none of the labels in {table.name} is inside the "
                           f"{TEMPLATE_SPACE} box; is the atlas in that space?", EX_DATAERR)
    return labels, regions


def run_tracer(settings, args, tracer, participants, group, levels, reference, covariates,
               group_dir, grid, labels, brain, desc, roi_atlas=None) -> None:
    out_dir = settings.output_dir
    smoothed = find_maps(out_dir, tracer, desc)
    unsmoothed = find_maps(out_dir, tracer, None)
    frame = participants.copy()
    frame["participant_id"] = frame["participant_id"].astype(str)
    left_out = []
    keep = []
    for _, row in frame.iterrows():
        sub = row["participant_id"]
        if sub not in smoothed or sub not in unsmoothed:
            left_out.append({"participant_id": sub, "reason": "no BPND map"})
        elif pd.isna(row[group]):
            left_out.append({"participant_id": sub, "reason": f"no {group}"})
        elif any(pd.isna(row[c]) for c in covariates):
            left_out.append({"participant_id": sub, "reason": "missing covariate " + ", ".join(
                c for c in covariates if pd.isna(row[c]))})
        else:
            keep.append(sub)
    frame = frame[frame["participant_id"].isin(keep)].reset_index(drop=True)
    frame[group] = frame[group].astype(str)
    counts = frame[group].value_counts()
    for level in levels:
        if counts.get(level, 0) < 2:
            raise PetbindError(f"{settings.bids_dir / 'participants.tsv'}: group {level!r} of "
                               f"{group!r} has {counts.get(level, 0)} participant(s) with maps; "
                               "each group needs at least 2", EX_DATAERR)
    say(settings, f"trc-{tracer}: {len(frame)} participants ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
        f"left out: {len(left_out)}")
    maps_sm = np.stack([np.asarray(nib.load(smoothed[s]).dataobj, dtype=np.float32)
                        for s in frame["participant_id"]])
    maps_raw = np.stack([np.asarray(nib.load(unsmoothed[s]).dataobj, dtype=np.float32)
                         for s in frame["participant_id"]])
    if maps_sm.shape[1:] != grid.shape:
        raise PetbindError(f"{smoothed[frame['participant_id'][0]]}: not on the 2 mm "
                           f"{TEMPLATE_SPACE} grid {grid.shape}", EX_DATAERR)
    mask = brain & np.all(np.isfinite(maps_sm), axis=0) & np.all(maps_sm != 0, axis=0)
    y = maps_sm[:, mask].astype(np.float64)
    prefix = f"trc-{tracer}"
    write_nifti(group_dir / f"{prefix}_desc-mean_meas-BPND_mimap.nii.gz",
                maps_raw.mean(axis=0), grid.affine)

    analyses = []
    for cov_label, cov in (("", []), ("Adj", covariates)) if covariates else (("", []),):
        x2, names2 = design_matrix(frame, group, levels, reference, cov, three_class=False)
        nuisance2 = [i for i, n in enumerate(names2) if not n.startswith("group[")]
        c = np.zeros(x2.shape[1])
        c[names2.index(f"group[{reference}]")] = 1
        analyses.append((Contrast(f"{reference}GtOthers{cov_label}", c), x2, nuisance2, names2))
        analyses.append((Contrast(f"{reference}LtOthers{cov_label}", -c), x2, nuisance2, names2))
        if len(levels) >= 3:
            x3, names3 = design_matrix(frame, group, levels, reference, cov, three_class=True)
            idx = [i for i, n in enumerate(names3) if n.startswith("group[")]
            f = np.zeros((len(idx), x3.shape[1]))
            for r, i in enumerate(idx):
                f[r, i] = 1
            nuisance3 = [i for i in range(x3.shape[1]) if i not in idx]
            analyses.append((Contrast(f"groupF{cov_label}", f), x3, nuisance3, names3))
    used, skipped = {}, {}
    for contrast, x, nuisance, names in analyses:
        dof = x.shape[0] - np.linalg.matrix_rank(x)
        if dof < 1:
            skipped[contrast.name] = (f"{x.shape[0]} participants and {x.shape[1]} regressors "
                                      "leave no residual degrees of freedom")
            say(settings, f"trc-{tracer}: contrast {contrast.name} skipped: "
                f"{skipped[contrast.name]}")
            continue
        inf = permutation_inference(x, y, mask, contrast, nuisance, args.n_permutations,
                                    args.cluster_threshold, args.fdr_q, settings.seed)
        used[contrast.name] = inf.n_permutations
        say(settings, f"trc-{tracer}: contrast {contrast.name} done ({inf.n_permutations} "
            f"permutations{', all orderings: exact test' if inf.exact else ''})")
        base = write_contrast(group_dir, prefix, contrast, inf, mask, grid, labels,
                              args.voxel_fdr)
        if args.tfce and not contrast.is_f:
            say(settings, f"trc-{tracer}: TFCE of {contrast.name} ({args.n_permutations} "
                "permutations)")
            tfce, p_fwe = tfce_inference(
                x, y, nib.Nifti1Image(mask.astype(np.uint8), grid.affine), contrast, nuisance,
                args.n_permutations, settings.seed, settings.nprocs)
            write_nifti(Path(f"{base}_stat-tfce_statmap.nii.gz"), volume(tfce, mask, grid),
                        grid.affine)
            write_nifti(Path(f"{base}_desc-tfceFWE_stat-p_statmap.nii.gz"),
                        volume(p_fwe, mask, grid, fill=1.0), grid.affine)
            write_nifti(Path(f"{base}_desc-tfceFWE_stat-t_statmap.nii.gz"),
                        volume(np.where(p_fwe < 0.05, inf.stat, 0.0), mask, grid), grid.affine)
        write_tsv(group_dir / f"{prefix}_contrast-{contrast.name}_design.tsv",
                  pd.DataFrame(x, columns=names).assign(participant_id=frame["participant_id"]))

    if roi_atlas is None:
        roi_labels, regions = labels, {}
        for roi in SEED_ROIS:
            regions[roi] = region_labels(roi)
            regions[f"{roi}_left"] = region_labels(roi, "left")
            regions[f"{roi}_right"] = region_labels(roi, "right")
    else:
        roi_labels, regions = roi_atlas
    values = roi_means(maps_raw, roi_labels, regions)
    roi_frame = pd.concat([frame[["participant_id", group] + covariates].reset_index(drop=True),
                           pd.DataFrame(values, columns=list(regions))], axis=1)
    write_tsv(group_dir / f"{prefix}_desc-roi_bpnd.tsv", roi_frame)
    cov_sets = [[]] + ([covariates[:1]] if covariates else []) + \
        ([covariates] if len(covariates) > 1 else [])
    stats_table, tukey = table2(roi_frame, list(regions), group, reference, cov_sets)
    write_tsv(group_dir / f"{prefix}_desc-roi_stats.tsv", stats_table)
    if not tukey.empty:
        write_tsv(group_dir / f"{prefix}_desc-roi_tukey.tsv", tukey)
    left = pd.DataFrame(left_out, columns=["participant_id", "reason"])
    write_tsv(group_dir / f"{prefix}_desc-leftout_participants.tsv", left)
    write_json(group_dir / f"{prefix}_desc-settings.json", {
        "GroupColumn": group, "Levels": levels, "ReferenceGroup": reference,
        "Covariates": covariates, "Smoothing": desc or "none",
        "VoxelFDR": bool(args.voxel_fdr), "TFCE": bool(args.tfce), "ROIAtlas": args.roi_atlas,
        "ClusterFormingThresholdP": args.cluster_threshold, "FDRq": args.fdr_q,
        "NumberOfPermutations": args.n_permutations, "PermutationsUsed": used,
        "SkippedContrasts": skipped,
        "Seed": settings.seed,
        "Inference": "cluster-level FDR (Benjamini-Hochberg over nonparametric uncorrected "
        "cluster p-values from Freedman-Lane permutations), as SPM's topological FDR but with "
        "permutation instead of random-field cluster p-values"})
    from bids_app.group_report import group_report
    report = group_report(group_dir, tracer, group, left)
    say(settings, f"trc-{tracer}: report {report}")


def volume(values, mask, grid, fill: float = 0.0) -> np.ndarray:
    out = np.full(grid.shape, fill, dtype=np.float32)
    out[mask] = values
    return out


def write_contrast(group_dir, prefix, contrast, inf, mask, grid, labels,
                   voxel_fdr: bool = False) -> Path:
    """The contrast's statistic maps, cluster-FDR map and cluster table (and the voxel-FDR map
    when asked); returns the path prefix of its files."""
    def vol(values):
        return volume(values, mask, grid)

    kind = "F" if contrast.is_f else "t"
    base = group_dir / f"{prefix}_contrast-{contrast.name}"
    write_nifti(Path(f"{base}_stat-{kind}_statmap.nii.gz"), vol(inf.stat), grid.affine)
    write_nifti(Path(f"{base}_stat-z_statmap.nii.gz"), vol(inf.z), grid.affine)
    write_nifti(Path(f"{base}_stat-p_statmap.nii.gz"), vol(inf.p), grid.affine)
    write_nifti(Path(f"{base}_stat-effect_statmap.nii.gz"), vol(inf.effect), grid.affine)
    significant = np.isin(inf.cluster_labels, np.flatnonzero(inf.cluster_significant) + 1)
    thresholded = np.where(significant, vol(inf.stat), 0.0)
    write_nifti(Path(f"{base}_desc-clusterFDR_stat-{kind}_statmap.nii.gz"), thresholded,
                grid.affine)
    if voxel_fdr:
        write_nifti(Path(f"{base}_desc-voxelFDR_stat-{kind}_statmap.nii.gz"),
                    vol(np.where(inf.voxel_fdr_significant, inf.stat, 0.0)), grid.affine)
    names = atlas_labels()
    rows = []
    stat_vol = vol(inf.stat)
    for k, size in enumerate(inf.cluster_sizes, start=1):
        idx = np.argwhere(inf.cluster_labels == k)
        world = idx @ grid.affine[:3, :3].T + grid.affine[:3, 3]
        values = stat_vol[tuple(idx.T)]
        peak = world[int(np.argmax(values))]
        com = world.mean(axis=0)
        lab = labels[tuple(idx.T)]
        covered = pd.Series(lab[lab > 0]).value_counts(normalize=True)
        regions = "; ".join(f"{names.get(int(i), i)} {v:.0%}" for i, v in covered.items()
                            if v >= 0.05)
        rows.append({"cluster": k, "size_voxels": int(size),
                     "size_mm3": float(size * abs(np.linalg.det(grid.affine[:3, :3]))),
                     "peak_stat": float(values.max()), "peak_x": peak[0], "peak_y": peak[1],
                     "peak_z": peak[2], "com_x": com[0], "com_y": com[1], "com_z": com[2],
                     "p_unc": float(inf.cluster_p_unc[k - 1]), "q_fdr": float(inf.cluster_q[k - 1]),
                     "p_fwe": float(inf.cluster_p_fwe[k - 1]),
                     "significant": bool(inf.cluster_significant[k - 1]), "regions": regions})
    columns = ["cluster", "size_voxels", "size_mm3", "peak_stat", "peak_x", "peak_y", "peak_z",
               "com_x", "com_y", "com_z", "p_unc", "q_fdr", "p_fwe", "significant", "regions"]
    write_tsv(Path(f"{base}_clusters.tsv"), pd.DataFrame(rows, columns=columns))
    return base
