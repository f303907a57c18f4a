"""Group effects with and without partial-volume correction (issue 23's validation; not a CI
test: about 3 minutes per participant).

    python benchmarks/pvc_group.py [--per-group 4] [--effect thalamus=0.25 ...] [--out DIR]

Simulates two groups (PET 3 mm, T1w 2 mm, motion 1 mm, noise 0.1, PSF 2.5 mm) with BPND lower
by the planted fractions in the second group, runs the participant level with GTM and RBV
(`--pvc-psf-fwhm 2.5 --pvc-method rbv`), then the group level's ROI analysis four ways: maps
without PVC (the seed study), RBV maps (`--pvc`), regional fits without PVC and GTM-corrected
regional fits (`--roi-source regional [--pvc]`). For each ROI it prints the group difference
(first group minus second, BPND) each way, its standard error, and its ratio to the true
difference of the same participants (the simulator's regional truth): the partial-volume factor
by which uncorrected effects shrink. Markdown, for docs/validation.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bids_app.cli.common import run_cli  # noqa: E402
from bids_app.cli.run import main as petbind_main  # noqa: E402
from bids_app.cli.simulate import main as simulate_main  # noqa: E402

WAYS = {"maps, no PVC": [], "maps, RBV": ["--pvc"],
        "regional, no PVC": ["--roi-source", "regional"],
        "regional, GTM": ["--roi-source", "regional", "--pvc"]}


def difference(table: pd.DataFrame, groups: pd.Series, region: str) -> tuple[float, float]:
    """First group's mean minus the second's, and its standard error (Welch)."""
    values = table.set_index("participant_id")[region]
    a, b = (values[groups[values.index] == g] for g in groups.unique()[:2])
    return (float(a.mean() - b.mean()),
            float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--per-group", type=int, default=4)
    p.add_argument("--effect", action="append", default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    effects = args.effect or ["thalamus=0.25", "dorsalcaudate=0.25", "amygdala=0.25"]
    root = args.out or Path(tempfile.mkdtemp(prefix="petbind-pvc-group-"))
    ds, out = root / "ds", root / "out"
    if not ds.exists():
        sim = [str(ds), "--groups", f"a={args.per_group},b={args.per_group}", "--voxel-size",
               "3", "--t1-voxel-size", "2", "--motion-mm", "1", "--skull-stripped",
               "--seed", "23", "-q"]
        for e in effects:
            sim += ["--effect", e]
        assert run_cli("petbind-simulate", simulate_main, sim) == 0
    if not out.exists():
        run_cli("petbind", petbind_main, [str(ds), str(out), "participant", "-w",
                                          str(root / "work"), "--nprocs", "2", "-q",
                                          "--pvc-psf-fwhm", "2.5", "--pvc-method", "rbv"])
    truth = pd.read_csv(ds / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    groups = truth.drop_duplicates("participant_id").set_index("participant_id")["group"]
    true_table = truth.pivot(index="participant_id", columns="region",
                             values="BPND").reset_index()
    tables = {}
    for way, options in WAYS.items():
        shutil.rmtree(out / "group", ignore_errors=True)
        code = run_cli("petbind", petbind_main, [str(ds), str(out), "group", "--n-permutations",
                                                 "10", "--covariates", "-q", *options])
        assert code == 0, way
        tables[way] = pd.read_csv(out / "group" / "trc-carfentanil_desc-roi_bpnd.tsv",
                                  sep="\t")
    regions = [e.split("=")[0] for e in effects] + ["insula", "acc"]
    print("| ROI | true difference | " + " | ".join(WAYS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in WAYS) + " |")
    for region in regions:
        used = tables["maps, no PVC"]["participant_id"]
        true_diff, true_se = difference(true_table[true_table["participant_id"].isin(used)],
                                        groups, region)
        cells = []
        for way in WAYS:
            diff, se = difference(tables[way], groups, region)
            cells.append(f"{diff:+.3f} (SE {se:.3f}; x{diff / true_diff:.2f})"
                         if abs(true_diff) > 1e-9 else f"{diff:+.3f} (SE {se:.3f})")
        print(f"| {region} | {true_diff:+.3f} (SE {true_se:.3f}) | " + " | ".join(cells) + " |")
    print(f"\nparticipants: {len(groups)}; outputs in {root}")


if __name__ == "__main__":
    main()
