"""Real blocking and test-retest data through the product: ds004869's [11C]MC1 PETPrep TACs
(../shared/data/ds004869-mc1, 27 participants, 54 scans) by `petbind participant --derivatives`,
then `group --analysis occupancy` and `--analysis retest`. Prints the time of the participant
level, how the models agree in cortex, each blocked participant's occupancy and the test-retest
statistics.

    python benchmarks/mc1.py [--model mrtm2] [--nprocs 4] [--min-baseline-bpnd 0.1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ds004869-mc1"


def petbind(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bids_app.cli.run", str(DATA), *args, "-q"],
                   check=True, cwd=ROOT)


def cortex_bpnd(out: Path, label: str) -> pd.DataFrame:
    """Cortical BPND of every scan (rows) and region (columns) for one model label."""
    rows = {}
    for path in sorted(out.glob(f"sub-*/ses-*/pet/*_model-{label}_kinpar.tsv")):
        table = pd.read_csv(path, sep="\t").set_index("region")["BPND"]
        rows["_".join(path.name.split("_")[:2])] = table[table.index.str.startswith("ctx-")]
    return pd.DataFrame(rows).T


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mrtm2", help="the group level's model (default mrtm2)")
    p.add_argument("--nprocs", default="4")
    p.add_argument("--min-baseline-bpnd", default="0.1")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        start = time.time()
        petbind(str(out), "participant", "--derivatives", str(DATA / "derivatives" / "petprep"),
                "--skip-bids-validation", "-w", str(Path(tmp) / "work"), "--nprocs",
                args.nprocs)
        print(f"participant level, 54 scans, --nprocs {args.nprocs}: "
              f"{time.time() - start:.0f} s")
        fits = {label: cortex_bpnd(out, label) for label in ("SRTM", "SRTM2", "MRTM2",
                                                              "LoganRef")}
        for label, values in fits.items():
            flat = values.to_numpy().ravel()
            print(f"{label:8s} cortical BPND median {np.nanmedian(flat):.3f}, above 3 (on or "
                  f"near the bound of 8): {np.mean(flat > 3) * 100:.0f} %, median |x - MRTM2| "
                  f"{np.nanmedian(np.abs(flat - fits['MRTM2'].to_numpy().ravel())):.3f}")
        petbind(str(out), "group", "--analysis", "occupancy", "--baseline-session", "baseline",
                "--blocked-session", "blocked", "--model", args.model,
                "--min-baseline-bpnd", args.min_baseline_bpnd)
        table = pd.read_csv(out / "group" / "occupancy" /
                            "trc-mc1_desc-participant_occupancy.tsv", sep="\t")
        print(table[["participant_id", "occupancy", "occupancy_ci_low", "occupancy_ci_high",
                     "intercept", "n_regions"]].round(3).to_string(index=False))
        petbind(str(out), "group", "--analysis", "retest", "--test-session", "test",
                "--retest-session", "retest", "--model", args.model)
        stats = pd.read_csv(out / "group" / "retest" / "trc-mc1_desc-region_retest.tsv",
                            sep="\t")
        cortex = stats[stats["region"].str.startswith("ctx-")]
        print(f"test-retest, {int(cortex['n'].max())} participants, median over "
              f"{len(cortex)} cortical regions:")
        print(cortex[["mean", "bias", "variability_percent", "wscv_percent", "icc_3_1",
                      "icc_1_1"]].median().round(3).to_string())


if __name__ == "__main__":
    main()
