"""petbind-tacs: reference-tissue models on a TAC table (BIDS PET derivative layout).

    petbind-tacs TACS.tsv --reference COLUMN [--model srtm|srtm-bfm|srtm2|mrtm2|logan-ref]
                 [--weights uniform|duration|counts|kinfitr|COLUMN] [--tracer NAME]
                 [--theta3-range LO HI] -o OUT_kinpar.tsv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bids_app import __version__
from bids_app.cli.common import (Parser, add_kinetic_options, finite_or_fail, radionuclide,
                                 run_cli, theta3_range)
from bids_app.errors import EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_USAGE, PetbindError
from workflows.kinetics.frames import FrameTiming, TimingError
from workflows.kinetics.regional import (RegionalFit, estimate_k2prime, fit_logan_ref,
                                         fit_mrtm2, fit_srtm, fit_srtm2)
from workflows.kinetics.srtm_bfm import make_basis_set, fit_srtm_bfm
from workflows.kinetics.weights import WEIGHT_SCHEMES, frame_weights

MODELS = ("srtm", "srtm-bfm", "srtm2", "mrtm2", "logan-ref")


def build_parser() -> Parser:
    p = Parser(prog="petbind-tacs", description="Fit reference-tissue models to regional TACs. "
               "TACS.tsv has columns frame_start and frame_end (seconds from injection) and one "
               "column per region (decay-corrected, e.g. Bq/mL).")
    p.add_argument("tacs", type=Path, metavar="TACS.tsv")
    p.add_argument("--reference", required=True, metavar="COLUMN",
                   help="column of the reference region")
    p.add_argument("--model", choices=MODELS, default="srtm", help="default: srtm")
    p.add_argument("--weights", default="uniform", metavar="SCHEME|COLUMN",
                   help=f"one of {', '.join(WEIGHT_SCHEMES)}, or a column holding weights "
                   "(default: uniform). counts and kinfitr use the mean of all TACs and need "
                   "the radionuclide (--tracer or --radionuclide)")
    p.add_argument("--radionuclide", help="e.g. C11, F18 (default: the tracer's)")
    p.add_argument("--k2prime", type=float, metavar="PER_MIN",
                   help="reference efflux k2' in 1/min for srtm2, mrtm2 and logan-ref "
                   "(default: the median k2/R1 of SRTM fits over the regions)")
    p.add_argument("--tstar", type=float, metavar="MIN",
                   help="start of the linear part in minutes (logan-ref default 15, mrtm2 0)")
    add_kinetic_options(p)
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT_kinpar.tsv")
    p.add_argument("--version", action="version", version=f"petbind {__version__}")
    return p


def read_tacs(path: Path) -> tuple[FrameTiming, pd.DataFrame]:
    if not path.is_file():
        raise PetbindError(f"{path}: no such file; give the TAC table (TSV)", EX_NOINPUT)
    try:
        table = pd.read_csv(path, sep="\t")
    except Exception as err:  # pandas raises many types for malformed text
        raise PetbindError(f"{path}: cannot be read as a TSV ({err})", EX_DATAERR) from None
    missing = [c for c in ("frame_start", "frame_end") if c not in table.columns]
    if missing:
        raise PetbindError(f"{path}: no column {', '.join(missing)}; the first columns must be "
                           "frame_start and frame_end in seconds", EX_DATAERR)
    try:
        start = table["frame_start"].to_numpy(float)
        timing = FrameTiming(start, table["frame_end"].to_numpy(float) - start)
    except (TimingError, ValueError) as err:
        raise PetbindError(f"{path}: {err}", EX_DATAERR) from None
    return timing, table.drop(columns=["frame_start", "frame_end"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    timing, table = read_tacs(args.tacs)
    if args.reference not in table.columns:
        raise PetbindError(f"{args.tacs}: no column {args.reference!r} for --reference; "
                           f"columns are {', '.join(table.columns)}", EX_USAGE)
    weights_source = args.weights
    if args.weights in table.columns:
        weights = table.pop(args.weights).to_numpy(float)
        finite_or_fail(weights, f"{args.tacs}: weights column {args.weights!r}")
    elif args.weights in WEIGHT_SCHEMES:
        nuclide = radionuclide(args)
        if args.weights in ("counts", "kinfitr") and nuclide is None:
            raise PetbindError(f"--weights {args.weights} needs the radionuclide: give --tracer "
                               "or --radionuclide", EX_USAGE)
        weights = None
    else:
        raise PetbindError(f"--weights {args.weights!r} is neither a scheme "
                           f"({', '.join(WEIGHT_SCHEMES)}) nor a column of {args.tacs}", EX_USAGE)
    values = table.apply(pd.to_numeric, errors="coerce")
    finite_or_fail(values.to_numpy(), str(args.tacs))
    reference = values[args.reference].to_numpy(float)
    if not np.any(reference > 0):
        raise PetbindError(f"{args.tacs}: the reference TAC {args.reference!r} is zero "
                           "everywhere; check the reference region", EX_DATAERR)
    regions = [c for c in values.columns if c != args.reference]
    if not regions:
        raise PetbindError(f"{args.tacs}: no target region besides the reference", EX_DATAERR)
    if weights is None:
        weights = frame_weights(args.weights, timing, values.to_numpy(float).mean(axis=1),
                                radionuclide(args))
    tacs = values[regions].to_numpy(float).T                   # (n_regions, n_frames)
    k2a_range, range_source = theta3_range(args) if args.model == "srtm-bfm" else (None, "")
    fits = fit_regions(args, timing, reference, tacs, weights, k2a_range)

    rows = []
    for region, fit in zip(regions, fits):
        row = fit.as_row()
        rows.append({"region": region, "BPND": row["bpnd"], "R1": row["r1"],
                     "k2": row["k2_per_min"], "k2a": row["k2a_per_min"],
                     "k2prime": row["k2prime_per_min"], "BPND_se": row["bpnd_se"],
                     "R1_se": row["r1_se"], "k2_se": row["k2_se"], "wRSS": row["wrss"],
                     "n_frames": row["n_frames_fitted"], "on_bound": row["on_bound"],
                     "warnings": row["warnings"]})
    out = pd.DataFrame(rows)
    settings = {
        "Model": fits[0].model, "ReferenceRegion": args.reference, "Weights": weights_source,
        "FrameWeights": [round(float(w), 6) for w in weights],
        "Source": str(args.tacs), "Software": f"petbind {__version__}",
        "TimeUnits": "rate constants in 1/min; frame times read in seconds",
    }
    if args.model == "srtm-bfm":
        settings.update({"Theta3RangePerMin": list(k2a_range), "Theta3RangeSource": range_source,
                         "NumberOfBases": args.n_bases, "Theta3Spacing": "log"})
    if args.model == "srtm":
        settings["Bounds"] = {"R1": [0, 3], "k2": [0, 1], "BPND": [0, 8]}
    if args.model in ("srtm2", "mrtm2", "logan-ref"):
        settings["K2Prime"] = fits[0].k2prime_per_min
        settings["K2PrimeSource"] = "--k2prime" if args.k2prime else "median SRTM k2/R1"
    if args.model in ("mrtm2", "logan-ref"):
        settings["TStarMin"] = tstar(args)
    write_outputs(args.output, out, settings)
    for region, fit in zip(regions, fits):
        for warning in fit.warnings:
            print(f"petbind-tacs: warning: {region}: {warning}", file=sys.stderr)
    return 0


def tstar(args) -> float:
    if args.tstar is not None:
        return args.tstar
    return 15.0 if args.model == "logan-ref" else 0.0


def fit_regions(args, timing: FrameTiming, reference: np.ndarray, tacs: np.ndarray,
                weights: np.ndarray, k2a_range: tuple[float, float] | None) -> list[RegionalFit]:
    if args.model == "srtm-bfm":
        result = fit_srtm_bfm(tacs, make_basis_set(timing, reference, weights, k2a_range,
                                                   args.n_bases))
        return [RegionalFit("SRTM-BFM", float(result.bpnd[i]), float(result.r1[i]),
                            float(result.k2_per_min[i]), float(result.k2a_per_min[i]),
                            wrss=float(result.wrss[i]), n_frames_fitted=timing.n_frames,
                            on_bound=bool(result.on_bound[i]),
                            warnings=["best theta3 on the edge of the range"]
                            if result.on_bound[i] else [])
                for i in range(tacs.shape[0])]
    if args.model == "srtm":
        return [fit_srtm(timing, reference, tac, weights) for tac in tacs]
    k2p = args.k2prime
    if k2p is None:
        try:
            k2p = estimate_k2prime([fit_srtm(timing, reference, tac, weights) for tac in tacs])
        except ValueError as err:
            raise PetbindError(f"{args.tacs}: {err} (--k2prime)", EX_DATAERR) from None
    elif k2p <= 0:
        raise PetbindError(f"--k2prime must be positive, got {k2p}", EX_USAGE)
    try:
        if args.model == "srtm2":
            return [fit_srtm2(timing, reference, tac, weights, k2p) for tac in tacs]
        if args.model == "mrtm2":
            return [fit_mrtm2(timing, reference, tac, weights, k2p, tstar(args)) for tac in tacs]
        return [fit_logan_ref(timing, reference, tac, k2p, tstar(args), weights) for tac in tacs]
    except ValueError as err:
        raise PetbindError(f"{args.tacs}: {err}; lower --tstar", EX_DATAERR) from None


def write_outputs(path: Path, table: pd.DataFrame, settings: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
        sidecar = path.with_name(path.name.removesuffix(".tsv") + ".json")
        sidecar.write_text(json.dumps(settings, indent=2) + "\n")
    except OSError as err:
        raise PetbindError(f"{path}: cannot write ({err.strerror}); choose a writable -o",
                           EX_CANTCREAT) from None


def entry() -> None:
    sys.exit(run_cli("petbind-tacs", main))


if __name__ == "__main__":
    entry()
