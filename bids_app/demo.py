"""petbind-demo: the whole participant level on a small simulated dataset, then the regional
BPND beside the simulator's truth. ``petbind-demo --kinetics`` instead fits every kinetic model to
simulated [11C]carfentanil TACs (seconds, no images).

The data come from physics (a plasma input, a one-tissue reference region and targets integrated
numerically, frame-averaged on the seed study's protocols, with noise that follows the counts), so
the truth is known exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import names
from bids_app.tracers import lookup_tracer
from workflows.kinetics.compartments import (TissueParameters, add_counts_noise,
                                             simulate_frames)
from workflows.kinetics.frames import SEED_PROTOCOLS, FrameTiming
from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import MODELS
from workflows.kinetics.models.srtm import estimate_k2prime
from workflows.kinetics.weights import frame_weights
from workflows.simulation.receptors import PATTERNS

# [11C]carfentanil BPND of healthy volunteers: the simulator's literature pattern (Turtonen et al.
# 2021 group map, occipital reference), without the reference region itself.
CARFENTANIL_BPND = {region: value for region, value in PATTERNS["carfentanil"].regions.items()
                    if value > 0}


def run_demo(noise_scale: float = 2.0, seed: int = 1) -> pd.DataFrame:
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS["carfentanil"])
    tracer = lookup_tracer("carfentanil")
    regions = list(CARFENTANIL_BPND)
    bpnd = np.array([CARFENTANIL_BPND[r] for r in regions])
    reference = TissueParameters(np.array([0.12]), np.array([0.15]), np.zeros(1), np.zeros(1))
    targets = TissueParameters.from_srtm(0.12, 0.15, r1=np.full(bpnd.size, 1.1), bpnd=bpnd,
                                         k4=0.5)
    rng = np.random.default_rng(seed)
    ref = add_counts_noise(simulate_frames(timing, reference)[0], timing, "C11",
                           noise_scale / 3, rng)  # the reference region is large: less noise
    tacs = add_counts_noise(simulate_frames(timing, targets), timing, "C11", noise_scale, rng)
    weights = frame_weights("counts", timing, tacs.mean(axis=0), "C11")
    srtm = MODELS["srtm"].fit_regional(timing, ref, tacs, weights, ModelSettings())
    settings = ModelSettings(theta3_range_per_min=tracer.k2a_range_per_min(),
                             k2prime_per_min=estimate_k2prime(srtm))
    table = {"region": regions, "truth": bpnd}
    for name, model in MODELS.items():
        # the Logan plot unweighted, as it is usually run
        w = None if name == "logan-ref" else weights
        table[model.method] = (srtm if name == "srtm" else
                               model.fit_regional(timing, ref, tacs, w, settings))["BPND"]
    return pd.DataFrame(table)


def kinetics_demo() -> int:
    table = run_demo()
    print("petbind demo: BPND recovered from simulated [11C]carfentanil TACs "
          "(seed protocol 3x1, 4x3, 9x6 min; count-dependent noise)\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    err = table.drop(columns=["region", "truth"]).sub(table["truth"], axis=0).div(
        table["truth"], axis=0).abs().mean() * 100
    print("\nmean |error| in % of truth:  " + "  ".join(f"{k} {v:.1f}" for k, v in err.items()))
    return 0


def pipeline_demo(root: Path, n_subjects: int, nprocs: int) -> int:
    from bids_app.cli.run import main as petbind_main
    from bids_app.cli.simulate import main as simulate_main
    from workflows.imaging.atlas import SEED_ROIS

    bids, out, work = root / "bids", root / "derivatives" / "petbind", root / "work"
    if not (bids / "dataset_description.json").exists():
        print(f"petbind demo: simulating {n_subjects} participants into {bids}", flush=True)
        simulate_main([str(bids), "--n-subjects", str(n_subjects), "--seed", "1",
                       "--effect", "hippocampus=0.15"])
    print(f"petbind demo: petbind {bids} {out} participant -w {work} --nprocs {nprocs}",
          flush=True)
    code = petbind_main([str(bids), str(out), "participant", "-w", str(work),
                         "--nprocs", str(nprocs)])
    truth = pd.read_csv(bids / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    rows = []
    for kinpar in names.find(out, "kinpar", ".tsv", trc="*", pvc=None, model="SRTM"):
        sub = kinpar.name.split("_")[0]
        est = pd.read_csv(kinpar, sep="\t").set_index("region")["BPND"]
        tru = truth[truth["participant_id"] == sub].set_index("region")["BPND"]
        for roi in SEED_ROIS:
            rows.append({"participant": sub, "region": roi, "truth": tru.get(roi),
                         "estimate": est.get(roi)})
    if rows:
        table = pd.DataFrame(rows)
        print("\nRegional BPND (SRTM on regional TACs) beside the simulator's truth:")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nReports: {', '.join(str(p) for p in sorted(out.glob('*.html')))}")
    return code


def entry() -> None:
    parser = argparse.ArgumentParser(prog="petbind-demo", description=__doc__)
    parser.add_argument("--kinetics", action="store_true", help="only the kinetic-model demo")
    parser.add_argument("--dir", type=Path, default=Path("demo_output"))
    parser.add_argument("--n-subjects", type=int, default=2)
    parser.add_argument("--nprocs", type=int, default=2)
    args = parser.parse_args()
    sys.exit(kinetics_demo() if args.kinetics else
             pipeline_demo(args.dir, args.n_subjects, args.nprocs))


if __name__ == "__main__":
    entry()
