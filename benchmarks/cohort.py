"""Accuracy of the anatomical stage on a cohort of heads (issue 19's validation; not a CI test).

    python benchmarks/cohort.py [--seeds 11 1 2 ...] [--deface both|no|yes] [--real T1W]
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
map. Prints one row per head and a summary, as Markdown (docs/validation.md keeps the table).
"""

from __future__ import annotations

import argparse
import json
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
    _, mni2t1w, _, _, mask = normalise(n4, robex_mask, str(work))
    seconds = time.time() - t0
    labels = ants.apply_transforms(ants.image_read(str(t1w)), ants.image_read(str(atlas_path())),
                                   mni2t1w, whichtoinvert=[True, False],
                                   interpolator="genericLabel").numpy().round().astype(int)
    return {"mask": nib.load(mask).get_fdata() > 0, "labels": labels, "seconds": seconds,
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


def participant(ds: Path, work: Path) -> list[dict]:
    """The participant level with GTM (PSF 2.5 mm) on a simulated dataset: per subject, the
    seed ROIs' GTM BPND error (%) against the regional truth and the MNI map's correlation."""
    import pandas as pd

    from bids_app.cli.run import main as petbind_main
    out = work / "out"
    run_cli("petbind", petbind_main, [str(ds), str(out), "participant", "-w", str(work / "w"),
                                      "--nprocs", "2", "--pvc-psf-fwhm", "2.5",
                                      "--skip-bids-validation", "-q"])
    truth = pd.read_csv(ds / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    rows = []
    for sub in sorted(p.name for p in ds.glob("sub-*")):
        scan = names.ScanEntities(sub[4:], None, "carfentanil")
        kinpar = names.scan_file(out, scan, "kinpar", ".tsv", pvc="GTM", model="SRTM")
        if not kinpar.is_file():
            rows.append({"sub": sub, "failed": True})
            continue
        est = pd.read_csv(kinpar, sep="\t").set_index("region")["BPND"]
        tru = truth[truth["participant_id"] == sub].set_index("region")["BPND"]
        err = (est[list(SEED_ROIS)] / tru[list(SEED_ROIS)] - 1) * 100
        est_map = nib.load(names.scan_file(out, scan, "mimap", ".nii.gz",
                                           space=names.TEMPLATE_SPACE, model="SRTM",
                                           meas="BPND")).get_fdata()
        tru_map = nib.load(names.scan_file(ds / "derivatives" / "truth", scan, "mimap",
                                           ".nii.gz", space=names.TEMPLATE_SPACE,
                                           meas="BPND")).get_fdata()
        brain = tru_map > 0
        rows.append({"sub": sub, "gtm_err_max": float(err.abs().max()),
                     "gtm_err_median": float(err.abs().median()),
                     "worst": err.abs().idxmax(),
                     "map_r": float(np.corrcoef(est_map[brain], tru_map[brain])[0, 1])})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[11, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    p.add_argument("--deface", choices=["both", "no", "yes"], default="both")
    p.add_argument("--real", type=Path, help="a real T1w with face and neck")
    p.add_argument("--participant", action="store_true",
                   help="also the whole participant level (slow: minutes per head)")
    p.add_argument("--out", type=Path, default=Path("cohort_output"))
    args = p.parse_args()
    variants = {"both": [False, True], "no": [False], "yes": [True]}[args.deface]
    rows = []
    for seed in args.seeds:
        for defaced in variants:
            ds = args.out / f"seed{seed}{'_defaced' if defaced else ''}"
            if not (ds / "dataset_description.json").is_file():
                run_cli("petbind-simulate", simulate_main, [
                    str(ds), "--n-subjects", "2" if seed == 11 else "1",
                    "--groups", "a,b" if seed == 11 else "a", "--tracer", "carfentanil",
                    "--voxel-size", "3" if not args.participant else "2", "--seed", str(seed),
                    "-q"] + (["--deface"] if defaced else []))
            for sub in sorted(q.name for q in ds.glob("sub-*")):
                run = anatomy(ds / sub / "anat" / f"{sub}_T1w.nii.gz", ds.parent /
                              f"work_{ds.name}_{sub}")
                row = {"head": f"seed {seed} {sub}", "defaced": defaced,
                       **score_simulated(ds, sub, run)}
                rows.append(row)
                print(json.dumps(row), flush=True)
            if args.participant:
                for extra in participant(ds, ds.parent / f"participant_{ds.name}"):
                    print(json.dumps({"head": f"seed {seed}", "defaced": defaced, **extra}),
                          flush=True)
    if args.real:
        runs = {}
        for defaced in (False, True):
            ds = args.out / f"real{'_defaced' if defaced else ''}"
            if not (ds / "dataset_description.json").is_file():
                run_cli("petbind-simulate", simulate_main, [
                    str(ds), "--n-subjects", "1", "--groups", "a", "--t1w", str(args.real),
                    "--voxel-size", "3", "-q"] + (["--deface"] if defaced else []))
            runs[defaced] = anatomy(ds / "sub-01" / "anat" / "sub-01_T1w.nii.gz",
                                    ds.parent / f"work_{ds.name}")
        zooms = np.prod(nib.load(args.real).header.get_zooms()[:3])
        row = {"head": "real T1w", "volume_ml": float(runs[False]["mask"].sum() * zooms / 1000),
               "volume_robex_ml": float(runs[False]["robex_mask"].sum() * zooms / 1000),
               "volume_defaced_ml": float(runs[True]["mask"].sum() * zooms / 1000),
               "mask_dice_plain_vs_defaced": dice(runs[False]["mask"], runs[True]["mask"]),
               "roi_dice_plain_vs_defaced_min": min(
                   dice(np.isin(runs[False]["labels"], region_labels(r)),
                        np.isin(runs[True]["labels"], region_labels(r))) for r in SEED_ROIS)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    simulated = [r for r in rows if "mask_dice" in r]
    if simulated:
        masks = [r["mask_dice"] for r in simulated]
        roi_min = min(r["roi_dice_min"] for r in simulated)
        print(f"\n{len(simulated)} simulated heads: brain mask Dice min {min(masks):.3f}, median "
              f"{np.median(masks):.3f}; seed-ROI Dice min {roi_min:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
