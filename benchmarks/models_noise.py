"""Bias and variance of the voxelwise models on noisy TACs with known truth (not a CI test).

    python benchmarks/models_noise.py [--realisations 200] [--noise 4.0]

One-tissue targets that follow SRTM exactly (BPND 0.3, 1, 2.5, 4; R1 0.8-1.4; the reference
region's k2' = 0.15 /min), the seed [11C]carfentanil protocol (16 frames), counts noise
(`add_counts_noise`, the level the speed benchmark uses), counts-based weights. Each model fits
every realisation; printed per target: mean bias (%) and SD of BPND, and the SD over the
median reported standard error (1 = the SE describes the scatter). k2' is given at its true
value to the models that fix it. Prints a Markdown table (docs/validation.md keeps it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows.kinetics.compartments import TissueParameters, add_counts_noise, simulate_frames  # noqa: E402
from workflows.kinetics.frames import SEED_PROTOCOLS, FrameTiming  # noqa: E402
from workflows.kinetics.model import ModelSettings  # noqa: E402
from workflows.kinetics.models import MODELS  # noqa: E402
from workflows.kinetics.weights import frame_weights  # noqa: E402

K1_REF, K2_REF = 0.12, 0.15
BPND = np.array([0.3, 1.0, 2.5, 4.0])
R1 = np.array([0.8, 1.0, 1.2, 1.4])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--realisations", type=int, default=200)
    ap.add_argument("--noise", type=float, default=4.0)
    args = ap.parse_args()
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS["carfentanil"])
    ref = simulate_frames(timing, TissueParameters(np.array([K1_REF]), np.array([K2_REF]),
                                                   np.zeros(1), np.zeros(1)))[0]
    clean = simulate_frames(timing, TissueParameters(R1 * K1_REF, R1 * K2_REF / (1 + BPND),
                                                     0 * R1, 0 * R1))
    rng = np.random.default_rng(3)
    noisy = np.array([add_counts_noise(t, timing, "C11", args.noise, rng)
                      for t in np.repeat(clean, args.realisations, axis=0)])
    w = frame_weights("counts", timing, noisy.mean(axis=0), "C11")
    fits = {
        "SRTM-BFM (voxelwise)": MODELS["srtm-bfm"].fit_voxelwise(
            timing, ref, noisy, w, ModelSettings(theta3_range_per_min=(0.02, 0.6))),
        "MRTM2 (voxelwise)": MODELS["mrtm2"].fit_voxelwise(
            timing, ref, noisy, w, ModelSettings(k2prime_per_min=K2_REF)),
        "LoganRef, t* 15 min (voxelwise)": MODELS["logan-ref"].fit_voxelwise(
            timing, ref, noisy, w, ModelSettings(k2prime_per_min=K2_REF)),
        "SRTM2-BFM (voxelwise)": MODELS["srtm2-bfm"].fit_voxelwise(
            timing, ref, noisy, w, ModelSettings(theta3_range_per_min=(0.02, 0.6),
                                                 k2prime_per_min=K2_REF)),
        "SRTM2 (regional, nonlinear)": MODELS["srtm2"].fit_regional(
            timing, ref, noisy, w, ModelSettings(k2prime_per_min=K2_REF)),
    }
    print(f"{args.realisations} realisations per target, noise {args.noise}\n")
    print("| model | " + " | ".join(f"BPND {b:g}: bias %, SD, SD/SE" for b in BPND) + " |")
    print("| --- |" + " --- |" * len(BPND))
    for name, fit in fits.items():
        bp = fit["BPND"].reshape(len(BPND), -1)
        se = fit.standard_errors.get("BPND")
        cells = []
        for k in range(len(BPND)):
            ratio = (f"{bp[k].std(ddof=1) / np.median(se.reshape(len(BPND), -1)[k]):.2f}"
                     if se is not None else "-")
            cells.append(f"{(bp[k].mean() / BPND[k] - 1) * 100:+.1f}, {bp[k].std(ddof=1):.3f}, "
                         f"{ratio}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
