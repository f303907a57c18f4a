"""Accuracy of the anatomical stage on a cohort of heads (issue 19's validation; not a CI test).

    python benchmarks/cohort.py [--seeds 11 1 2 ...] [--deface both|no|yes] [--real T1W]
                                [--deface-margin-mm MM] [--real-defaced T1W ...]
                                [--participant] [--out DIR]

Simulates one head per seed (seed 11 gives two, its sub-02 the failure that started this),
plain and defaced, runs petbind's anatomical numerics on each T1w (N4, brain extraction, SyN to
MNI, the mask refined by it) and scores them against the simulator's truth: the brain mask's
Dice (and ROBEX's before the refinement), and the Dice of each of the seed study's ten ROIs
between the atlas taken back through petbind's normalisation and the true labels on the T1w
grid. With --real, the real T1w (with face and neck) and its defaced
copy: the brain mask's volume and the agreement of the two runs (no truth there). With
--participant, also the whole participant level with GTM partial-volume correction (PSF 2.5 mm):
each seed ROI's GTM BPND against the regional truth and the MNI map's correlation with the true
map. ``--deface-margin-mm`` sets how close to the brain the simulator's defacing comes (its
default is what pydeface and quickshear leave; 4 mm is a harsher tool). With ``--participant``,
``--real-defaced`` runs the real T1w as another tool defaced it (e.g. by
benchmarks/deface_pydeface.py), against the plain T1w's truth. Prints one row per head and a
summary, as Markdown (docs/validation.md keeps the table).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nibabel as nib  # noqa: E402

from bids_app import names  # noqa: E402
from bids_app.cli.common import run_cli  # noqa: E402
from bids_app.cli.simulate import main as simulate_main  # noqa: E402
from workflows.imaging.atlas import SEED_ROIS, atlas_path, region_labels  # noqa: E402


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def anatomy(t1w: Path, work: Path) -> dict:
    """petbind's anatomical numerics on one T1w: the brain mask, the normalisation and the
    atlas taken back to the T1w grid."""
    import ants

    from workflows.imaging.anat import bias_correct_and_extract, normalise
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    n4, _, robex_mask = bias_correct_and_extract(str(t1w), str(work), mode="force")
    normalised = normalise(n4, robex_mask, str(work))
    seconds = time.time() - t0
    labels = ants.apply_transforms(ants.image_read(str(t1w)), ants.image_read(str(atlas_path())),
                                   [normalised.mni2t1w],
                                   interpolator="genericLabel").numpy().round().astype(int)
    return {"mask": nib.load(normalised.brain_mask).get_fdata() > 0, "labels": labels,
            "seconds": seconds,
            "robex_mask": nib.load(robex_mask).get_fdata() > 0}


def score_simulated(ds: Path, sub: str, run: dict) -> dict:
    truth = ds / "derivatives" / "truth" / sub / "anat"
    mask = nib.load(truth / names.anat_name(sub[4:], None, "mask", desc="brain")).get_fdata() > 0
    labels = np.asarray(nib.load(truth / names.anat_name(
        sub[4:], None, "dseg", seg="neuromorphometrics")).dataobj).astype(int)
    rois = {roi: dice(np.isin(run["labels"], region_labels(roi)),
                      np.isin(labels, region_labels(roi))) for roi in SEED_ROIS}
    return {"mask_dice": dice(run["mask"], mask), "robex_dice": dice(run["robex_mask"], mask),
            "roi_dice_min": min(rois.values()),
            "roi_dice_mean": float(np.mean(list(rois.values()))),
            "worst_roi": min(rois, key=rois.get), "seconds": round(run["seconds"])}


def atlas_on_truth_pet_grid(ds: Path, work: Path, sub: str) -> np.ndarray:
    """The atlas taken back through the participant run's normalisation onto the truth's PET
    grid (the head's unmoved pose, the T1w's world), as the issue scores labels in PET space."""
    import ants
    folder = next(work.rglob(f"anat_{sub.replace('-', '')}_T1w/normalise"))
    truth = ants.image_read(str(ds / "derivatives" / "truth" / sub / "pet" /
                                f"{sub}_trc-carfentanil_seg-neuromorphometrics_dseg.nii.gz"))
    return ants.apply_transforms(truth, ants.image_read(str(atlas_path())),
                                 [str(folder / "t1w_to_mni_InverseComposite.h5")],
                                 interpolator="genericLabel").numpy().round().astype(int)


def participant(ds: Path, work: Path) -> list[dict]:
    """The participant level with GTM (PSF 2.5 mm) on a simulated dataset, per subject: the
    brain mask's Dice (T1w grid), each seed ROI's label Dice in PET space, the seed ROIs' GTM
    BPND error (%) against the regional truth and the MNI map's correlation with the true map."""
    import pandas as pd

    from bids_app.cli.run import main as petbind_main
    out = work / "out"
    t0 = time.time()
    run_cli("petbind", petbind_main, [str(ds), str(out), "participant", "-w", str(work / "w"),
                                      "--nprocs", "2", "--pvc-psf-fwhm", "2.5",
                                      "--skip-bids-validation", "-q"])
    seconds = time.time() - t0
    truth_dir = ds / "derivatives" / "truth"
    truth = pd.read_csv(truth_dir / "regional_bpnd.tsv", sep="\t")
    rows = []
    for sub in sorted(p.name for p in ds.glob("sub-*")):
        scan = names.ScanEntities(sub[4:], None, "carfentanil")
        kinpar = names.scan_file(out, scan, "kinpar", ".tsv", pvc="GTM", model="SRTM")
        if not kinpar.is_file():
            rows.append({"sub": sub, "failed": True})
            continue
        mask_name = names.anat_name(sub[4:], None, "mask", desc="brain")
        mask = nib.load(out / sub / "anat" / mask_name).get_fdata() > 0
        true_mask = nib.load(truth_dir / sub / "anat" / mask_name).get_fdata() > 0
        labels = atlas_on_truth_pet_grid(ds, work / "w", sub)
        true_labels = np.asarray(nib.load(names.scan_file(
            truth_dir, scan, "dseg", ".nii.gz", seg="neuromorphometrics")).dataobj).astype(int)
        rois = {roi: dice(np.isin(labels, region_labels(roi)),
                          np.isin(true_labels, region_labels(roi))) for roi in SEED_ROIS}
        est = pd.read_csv(kinpar, sep="\t").set_index("region")["BPND"]
        tru = truth[truth["participant_id"] == sub].set_index("region")["BPND"]
        err = (est[list(SEED_ROIS)] / tru[list(SEED_ROIS)] - 1) * 100
        est_map = nib.load(names.scan_file(out, scan, "mimap", ".nii.gz",
                                           space=names.TEMPLATE_SPACE, model="SRTM",
                                           meas="BPND")).get_fdata()
        tru_map = nib.load(names.scan_file(truth_dir, scan, "mimap", ".nii.gz",
                                           space=names.TEMPLATE_SPACE, meas="BPND")).get_fdata()
        brain = tru_map > 0
        rows.append({"sub": sub, "mask_dice": dice(mask, true_mask),
                     "pet_roi_dice_min": min(rois.values()), "worst_roi": min(rois, key=rois.get),
                     "gtm_err_max": float(err.abs().max()),
                     "gtm_err_median": float(err.abs().median()),
                     "gtm_err": err.round(1).to_dict(),
                     "map_r": float(np.corrcoef(est_map[brain], tru_map[brain])[0, 1]),
                     "run_seconds": round(seconds)})
    return rows


def simulated(out: Path, seed: int, defaced: bool, voxel_mm: str,
              t1w: Path | None = None, margin_mm: float | None = None) -> Path:
    """One simulated dataset (seed 11 gives two heads, the others one), made once; defaced up
    to ``margin_mm`` from the brain (None: the simulator's default)."""
    suffix = ("_defaced" + (f"{margin_mm:g}mm" if margin_mm is not None else "")) * defaced
    ds = out / f"{'real' if t1w else f'seed{seed}'}{suffix}"
    if not (ds / "derivatives" / "truth" / "regional_bpnd.tsv").is_file():   # the last written
        shutil.rmtree(ds, ignore_errors=True)
        two = seed == 11 and t1w is None
        margin = ["--deface-margin-mm", f"{margin_mm:g}"] if margin_mm is not None else []
        run_cli("petbind-simulate", simulate_main, [
            str(ds), "--n-subjects", "2" if two else "1", "--groups", "a,b" if two else "a",
            "--tracer", "carfentanil", "--voxel-size", voxel_mm, "--seed", str(seed), "-q"]
            + (["--deface", *margin] if defaced else []) + (["--t1w", str(t1w)] if t1w else []))
    return ds


def defaced_elsewhere(plain: Path, t1w: Path) -> Path:
    """The plain real head's dataset with its T1w as another tool defaced it (same grid): the
    truth stays the plain T1w's."""
    ds = plain.with_name(f"{plain.name}_{t1w.name.split('.')[0]}")
    shutil.rmtree(ds, ignore_errors=True)
    shutil.copytree(plain, ds)
    target = ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    image, original = nib.load(t1w), nib.load(target)
    if image.shape != original.shape or not np.allclose(image.affine, original.affine):
        raise SystemExit(f"{t1w}: not on the grid of {target}")
    shutil.copyfile(t1w, target)
    return ds


def real_anatomy(out: Path, real: Path, margin_mm: float | None) -> dict:
    """The real T1w, plain and defaced: brain volumes and their agreement (no truth there)."""
    datasets = {defaced: simulated(out, 11, defaced, "3", real, margin_mm)
                for defaced in (False, True)}
    runs = {defaced: anatomy(ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz", out / f"work_{ds.name}")
            for defaced, ds in datasets.items()}
    zooms = np.prod(nib.load(real).header.get_zooms()[:3])
    return {"head": "real T1w", "volume_ml": float(runs[False]["mask"].sum() * zooms / 1000),
            "volume_robex_ml": float(runs[False]["robex_mask"].sum() * zooms / 1000),
            "volume_defaced_ml": float(runs[True]["mask"].sum() * zooms / 1000),
            "mask_dice_plain_vs_defaced": dice(runs[False]["mask"], runs[True]["mask"]),
            "roi_dice_plain_vs_defaced_min": min(
                dice(np.isin(runs[False]["labels"], region_labels(r)),
                     np.isin(runs[True]["labels"], region_labels(r))) for r in SEED_ROIS)}


def summary(rows: list[dict]) -> str:
    heads = [r for r in rows if "mask_dice" in r]
    if not heads:
        return ""
    masks = [r["mask_dice"] for r in heads]
    key = "pet_roi_dice_min" if "pet_roi_dice_min" in heads[0] else "roi_dice_min"
    text = (f"\n{len(heads)} heads: brain mask Dice min {min(masks):.3f}, median "
            f"{np.median(masks):.3f}; seed-ROI Dice min {min(r[key] for r in heads):.3f}")
    if "gtm_err" in heads[0]:
        errors = [abs(e) for r in heads for e in r["gtm_err"].values()]
        text += (f"; GTM BPND |error| max {max(errors):.1f} %, median {np.median(errors):.1f} %, "
                 f"participants' medians at most {max(r['gtm_err_median'] for r in heads):.1f} %"
                 f"; MNI r min {min(r['map_r'] for r in heads):.3f}")
    return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="*", default=[11, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    p.add_argument("--deface", choices=["both", "no", "yes"], default="both")
    p.add_argument("--real", type=Path, help="a real T1w with face and neck")
    p.add_argument("--deface-margin-mm", type=float,
                   help="the simulator's --deface-margin-mm for the defaced heads")
    p.add_argument("--real-defaced", type=Path, nargs="+", default=[],
                   help="with --participant and --real: the real T1w defaced by other tools")
    p.add_argument("--participant", action="store_true",
                   help="the whole participant level instead (slow: minutes per head)")
    p.add_argument("--out", type=Path, default=Path("cohort_output"))
    args = p.parse_args()
    variants = {"both": [False, True], "no": [False], "yes": [True]}[args.deface]
    rows = []
    margin = args.deface_margin_mm
    datasets = [(f"seed {seed}", simulated(args.out, seed, defaced,
                                           "2" if args.participant else "3",
                                           margin_mm=margin), defaced)
                for seed in args.seeds for defaced in variants]
    if args.participant and args.real:
        # the real head's truth is petbind's own anatomy of the plain T1w: the defaced run
        # measures what defacing changes, and both measure the PET stages on a real anatomy
        real = {defaced: simulated(args.out, 11, defaced, "2", args.real, margin_mm=margin)
                for defaced in (False, True)}
        datasets += [("real T1w", ds, defaced) for defaced, ds in real.items()]
        datasets += [(f"real T1w, {t1w.name}", defaced_elsewhere(real[False], t1w), True)
                     for t1w in args.real_defaced]
    for head, ds, defaced in datasets:
        if args.participant:
            found = participant(ds, args.out / f"participant_{ds.name}")
        else:
            found = [{"sub": sub, **score_simulated(ds, sub, anatomy(
                ds / sub / "anat" / f"{sub}_T1w.nii.gz", args.out / f"work_{ds.name}_{sub}"))}
                for sub in sorted(q.name for q in ds.glob("sub-*"))]
        for row in found:
            rows.append({"head": head, "defaced": defaced, **row})
            print(json.dumps(rows[-1]), flush=True)
    if args.real and not args.participant:
        rows.append(real_anatomy(args.out, args.real, margin))
        print(json.dumps(rows[-1]), flush=True)
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
