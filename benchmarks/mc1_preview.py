"""A first look at real blocking and test-retest data: ds004869's [11C]MC1 PETPrep TACs
(../shared/data/ds004869-mc1) through `petbind-tacs` and the group level's occupancy and
reliability numerics. Not the product's path (the PETPrep TAC input is issue 21): the
reference is the mean of both cerebellar cortices, the regions the cortical ones plus thalamus
and putamen. Prints each blocked participant's occupancy plot and the test-retest statistics.

    python benchmarks/mc1_preview.py [--model logan-ref --k2prime none] [--min-bpnd 0.1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from workflows.group.occupancy import occupancy_plot  # noqa: E402
from workflows.group.reliability import reliability  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ds004869-mc1" / "derivatives" / "petprep"
KEPT = ("Left-Thalamus", "Right-Thalamus", "Left-Putamen", "Right-Putamen")


def fit_all(folder: Path, model_args: list[str]) -> dict[tuple[str, str], pd.DataFrame]:
    fits = {}
    for tsv in sorted(DATA.glob("sub-*/ses-*/pet/*_tacs.tsv")):
        table = pd.read_csv(tsv, sep="\t")
        regions = [c for c in table.columns if c.startswith("ctx-") or c in KEPT]
        out = pd.concat([table[["frame_start", "frame_end"]], table[regions]], axis=1)
        out["cerebellum"] = (table["Left-Cerebellum-Cortex"] +
                             table["Right-Cerebellum-Cortex"]) / 2
        path = folder / tsv.name
        out.to_csv(path, sep="\t", index=False)
        kinpar = folder / tsv.name.replace("_tacs.tsv", "_kinpar.tsv")
        done = subprocess.run([sys.executable, "-m", "bids_app.cli.tacs", str(path),
                               "--reference", "cerebellum", "--radionuclide", "C11",
                               *model_args, "-o", str(kinpar)], capture_output=True, text=True)
        if done.returncode:
            print(f"{tsv.name}: {done.stderr.strip()[-300:]}")
            continue
        sub, ses = tsv.name.split("_")[:2]
        fits[sub, ses] = pd.read_csv(kinpar, sep="\t").set_index("region")
    return fits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="logan-ref")
    p.add_argument("--k2prime", default="none")
    p.add_argument("--min-bpnd", type=float, default=0.1)
    args = p.parse_args()
    model_args = ["--model", args.model] + (["--k2prime", args.k2prime]
                                            if args.model in ("logan-ref", "mrtm2") else [])
    with tempfile.TemporaryDirectory() as tmp:
        fits = fit_all(Path(tmp), model_args)
    print("participant occupancy [95 % CI] intercept (p) regions median-BPND-baseline/blocked")
    for sub in sorted({s for s, ses in fits if ses == "ses-baseline"}):
        if (sub, "ses-blocked") not in fits:
            continue
        base, blocked = fits[sub, "ses-baseline"]["BPND"], fits[sub, "ses-blocked"]["BPND"]
        used = base >= args.min_bpnd
        try:
            fit = occupancy_plot(base[used], blocked.reindex(base.index)[used])
        except ValueError as err:
            print(sub, err)
            continue
        print(f"{sub} {fit.occupancy:.3f} [{fit.occupancy_low:.3f}, {fit.occupancy_high:.3f}] "
              f"{fit.intercept:+.3f} ({fit.intercept_p:.3f}) {fit.n_regions} "
              f"{base.median():.3f}/{blocked.median():.3f}")
    subjects = sorted(s for s, ses in fits if ses == "ses-test" and (s, "ses-retest") in fits)
    if subjects:
        regions = fits[subjects[0], "ses-test"].index
        test = np.array([fits[s, "ses-test"]["BPND"].reindex(regions) for s in subjects])
        retest = np.array([fits[s, "ses-retest"]["BPND"].reindex(regions) for s in subjects])
        stats = pd.DataFrame(reliability(test, retest), index=regions)
        print(f"test-retest, {len(subjects)} participants, median over regions:")
        print(stats[["mean", "variability_percent", "wscv_percent", "icc_3_1",
                     "icc_1_1"]].median().round(3).to_string())


if __name__ == "__main__":
    main()
