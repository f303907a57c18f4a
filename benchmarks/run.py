"""Speed benchmark of the voxelwise models: SRTM (basis functions), MRTM2, Logan reference.

    python benchmarks/run.py [--voxels 1500000] [--subset 2000]

A synthetic HRRT-sized case: about 1.5 million brain voxels, 17 frames (the seed [11C]MADAM
protocol), 300 bases. Prints voxel TACs per second, peak memory, agreement with a float64
per-voxel reference, and speed ratios against NiftyPAD's basis-function SRTM and a per-voxel
scipy curve_fit of SRTM, both timed in this run on a subset and scaled to the full case. Then
SRTM2 by basis functions, MRTM2 and the Logan reference plot (k2' fixed at the simulation's
0.15 /min) on the same voxels.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows.kinetics.compartments import TissueParameters, add_counts_noise, simulate_frames  # noqa: E402
from workflows.kinetics.convolution import convolve_exponentials  # noqa: E402
from workflows.kinetics.frames import SEED_PROTOCOLS, FrameTiming  # noqa: E402
from workflows.kinetics.model import ModelSettings  # noqa: E402
from workflows.kinetics.models import MODELS  # noqa: E402
from workflows.kinetics.models.srtm import srtm_model  # noqa: E402
from workflows.kinetics.models.srtm_bfm import fit_srtm_bfm, make_basis_set  # noqa: E402
from workflows.kinetics.weights import frame_weights  # noqa: E402

RANGE = (0.011, 0.566)   # MADAM's Magia range shifted to decay-corrected data
N_BASES = 300


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def make_case(n_voxels: int, seed: int = 0):
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS["madam"])
    ref = simulate_frames(timing, TissueParameters(np.array([0.12]), np.array([0.15]),
                                                   np.zeros(1), np.zeros(1)))[0]
    rng = np.random.default_rng(seed)
    # 256 distinct noise-free curves spread over realistic R1 and BPND, tiled, plus noise:
    # building 1.5 M curves one by one would dominate the benchmark.
    r1 = rng.uniform(0.7, 1.4, 256)
    bp = rng.uniform(0.05, 3.0, 256)
    clean = np.array([srtm_model(timing, ref, a, 0.15 * a, b) for a, b in zip(r1, bp)])
    tacs = np.empty((n_voxels, timing.n_frames), dtype=np.float32)
    step = 100_000
    for lo in range(0, n_voxels, step):
        hi = min(lo + step, n_voxels)
        tacs[lo:hi] = add_counts_noise(clean[np.arange(lo, hi) % 256], timing, "C11", 4.0, rng)
    return timing, ref, tacs


def reference_bpnd(timing, ref, y, w, theta):
    """float64 per-voxel reference: every basis by numpy.linalg.lstsq, least weighted RSS."""
    basis = convolve_exponentials(timing, ref, theta)
    sw = np.sqrt(w)
    out = np.empty(y.shape[0])
    designs = [np.column_stack([ref, b]) * sw[:, None] for b in basis]
    for v, tac in enumerate(y.astype(np.float64)):
        best = (np.inf, 0.0)
        for t3, a in zip(theta, designs):
            coef, *_ = np.linalg.lstsq(a, tac * sw, rcond=None)
            rss = float(np.sum((tac * sw - a @ coef) ** 2))
            if rss < best[0]:
                best = (rss, (coef[1] + coef[0] * t3) / t3 - 1)
        out[v] = best[1]
    return out


def time_niftypad(timing, ref, y, n: int) -> float | None:
    try:
        from niftypad import basis as nbasis, kt, models
    except ImportError:
        return None
    dt = np.vstack([timing.start_s, timing.end_s])
    t0 = time.perf_counter()
    b = nbasis.make_basis(kt.interpt1(timing.mid_s, ref, dt), dt, n_beta=N_BASES,
                          beta_lim=[RANGE[0] / 60, RANGE[1] / 60])
    for tac in y[:n]:
        models.srtmb_basis(tac.astype(np.float64), b)
    return (time.perf_counter() - t0) / n


def time_curve_fit(timing, ref, y, n: int) -> float:
    from scipy.optimize import curve_fit

    def model(_, r1, k2, bp):
        return srtm_model(timing, ref, r1, k2, bp)

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tac in y[:n]:
            try:
                curve_fit(model, timing.mid_min, tac.astype(np.float64), p0=[1.0, 0.15, 1.0],
                          bounds=([0, 1e-4, 0], [3, 1, 8]), maxfev=2000)
            except RuntimeError:
                pass
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--voxels", type=int, default=1_500_000)
    ap.add_argument("--subset", type=int, default=2000, help="voxels for the float64 reference")
    args = ap.parse_args()

    timing, ref, tacs = make_case(args.voxels)
    rss_before = peak_rss_gb()
    w = frame_weights("counts", timing, tacs[:10000].mean(axis=0), "C11")
    t0 = time.perf_counter()
    basis_set = make_basis_set(timing, ref, w, RANGE, N_BASES)
    result = fit_srtm_bfm(tacs, basis_set)
    elapsed = time.perf_counter() - t0
    rate = args.voxels / elapsed
    peak = peak_rss_gb()

    sub = tacs[:args.subset]
    ref_bp = reference_bpnd(timing, ref, sub, w, basis_set.theta3_per_min)
    max_diff = float(np.max(np.abs(result["BPND"][:args.subset] - ref_bp)))

    per_voxel_np = time_niftypad(timing, ref, sub, 200)
    per_voxel_cf = time_curve_fit(timing, ref, sub, 50)
    print(f"petbind SRTM-BFM: {args.voxels:,} voxels x {timing.n_frames} frames x {N_BASES} "
          f"bases in {elapsed:.2f} s = {rate / 1e6:.2f} million voxel TACs/s "
          f"(target >= 1.0)")
    print(f"peak memory: {peak:.2f} GB for the process (input array alone "
          f"{tacs.nbytes / 1024**3:.2f} GB; before fitting {rss_before:.2f} GB; target < 4)")
    print(f"max |BPND - float64 per-voxel reference| on {args.subset} voxels: {max_diff:.2e} "
          f"(target <= 1e-6)")
    if per_voxel_np is not None:
        print(f"NiftyPAD srtmb_basis: {1 / per_voxel_np:,.0f} voxels/s measured on 200 voxels; "
              f"full case {per_voxel_np * args.voxels / 60:.0f} min; petbind is "
              f"{rate * per_voxel_np:,.0f}x faster")
    print(f"scipy curve_fit SRTM: {1 / per_voxel_cf:,.0f} voxels/s measured on 50 voxels; "
          f"full case {per_voxel_cf * args.voxels / 3600:.1f} h; petbind is "
          f"{rate * per_voxel_cf:,.0f}x faster")
    settings = ModelSettings(k2prime_per_min=0.15, theta3_range_per_min=RANGE, n_bases=N_BASES)
    for name in ("srtm2-bfm", "mrtm2", "logan-ref"):
        t0 = time.perf_counter()
        MODELS[name].fit_voxelwise(timing, ref, tacs, w, settings)
        linear = args.voxels / (time.perf_counter() - t0)
        print(f"petbind {MODELS[name].label}: {linear / 1e6:.2f} million voxel TACs/s "
              f"(target >= 1.0), {linear / rate:.2f}x SRTM-BFM's rate")
    whole_process(timing, ref, tacs, rate)


def whole_process(timing, ref, tacs, fit_rate: float) -> None:
    """``petbind-fit`` as a user runs it, on the case written as a 1.6 million-voxel image
    (uncompressed NIfTI; every voxel in the brain mask, the reference TAC in 5,000 voxels
    beside them): the wall time of the whole process, imports, reading and writing included."""
    import json
    import subprocess
    import tempfile

    import nibabel as nib
    shape = (128, 128, 98)                    # 1,605,632 voxels
    n = int(np.prod(shape))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = np.empty((n, timing.n_frames), np.float32)
        data[:min(n, len(tacs))] = tacs[:n]
        data[len(tacs):] = ref
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        nib.save(nib.Nifti1Image(data.reshape(shape + (timing.n_frames,)), affine),
                 folder / "pet.nii")
        (folder / "pet.json").write_text(json.dumps({
            "TracerRadionuclide": "C11", "FrameTimesStart": timing.start_s.tolist(),
            "FrameDuration": timing.duration_s.tolist(), "ImageDecayCorrected": True,
            "ImageDecayCorrectionTime": 0, "Units": "Bq/mL"}))
        reference = np.zeros(n, np.uint8)
        reference[n - 5000:] = 1
        nib.save(nib.Nifti1Image(reference.reshape(shape), affine), folder / "ref.nii")
        nib.save(nib.Nifti1Image(np.ones(shape, np.uint8), affine), folder / "brain.nii")
        for model, extra in (("srtm-bfm", ["--theta3-range", *map(str, RANGE)]),
                             ("mrtm2", ["--k2prime", "0.15"])):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bids_app.cli.fit", str(folder / "pet.nii"),
                            "--reference-mask", str(folder / "ref.nii"), "--brain-mask",
                            str(folder / "brain.nii"), "--model", model, *extra,
                            "-o", str(folder / "out" / "x")], check=True)
            seconds = time.perf_counter() - t0
            print(f"petbind-fit --model {model}, whole process on {n:,} voxels: {seconds:.2f} s "
                  f"= {n / seconds / 1e6:.2f} million voxel TACs/s (target >= 1.0; the "
                  f"SRTM-BFM fit alone: {fit_rate / 1e6:.2f})")


if __name__ == "__main__":
    main()
