"""petbind-tacs: reference-tissue models on a TAC table (BIDS PET derivative layout).

    petbind-tacs TACS.tsv --reference COLUMN [--model MODEL]
                 [--weights uniform|duration|counts|kinfitr|COLUMN] [--tracer NAME]
                 [--theta3-range LO HI] [--k2prime PER_MIN] [--tstar MIN] -o OUT_kinpar.tsv

MODEL is any model of the family (:mod:`workflows.kinetics.models`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bids_app import __version__
from bids_app.bids_io import write_json, write_tsv
from bids_app.cli.common import (Parser, add_kinetic_options, finite_or_fail, k2prime_value,
                                 radionuclide, refuse_k2prime_none, run_cli, theta3_range)
from bids_app.errors import EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_USAGE, PetbindError
from workflows.kinetics.checks import ABSURD_FACTOR, absurd
from workflows.kinetics.frames import FrameTiming, TimingError
from workflows.kinetics.model import Fit, KineticModel, ModelSettings, se_columns
from workflows.kinetics.models import MODELS, get_model
from workflows.kinetics.models.mrtm2 import k2prime_by_mrtm
from workflows.kinetics.models.srtm import estimate_k2prime
from workflows.kinetics.weights import WEIGHT_SCHEMES, frame_weights

COLUMNS = ("BPND", "R1", "k2", "k2a", "k2prime", "BPND-se", "R1-se", "k2-se", "wRSS",
           "n_frames", "on_bound", "warnings")


def build_parser() -> Parser:
    p = Parser(prog="petbind-tacs", description="Fit reference-tissue models to regional TACs. "
               "TACS.tsv has columns frame_start and frame_end (seconds from injection) and one "
               "column per region (decay-corrected, e.g. Bq/mL).")
    p.add_argument("tacs", type=Path, metavar="TACS.tsv")
    p.add_argument("--reference", required=True, metavar="COLUMN",
                   help="column of the reference region")
    p.add_argument("--model", choices=list(MODELS), default="srtm", help="default: srtm")
    p.add_argument("--weights", default="uniform", metavar="SCHEME|COLUMN",
                   help=f"one of {', '.join(WEIGHT_SCHEMES)}, or a column holding weights "
                   "(default: uniform). counts and kinfitr use the mean of all TACs and need "
                   "the radionuclide (--tracer or --radionuclide)")
    p.add_argument("--radionuclide", help="e.g. C11, F18 (default: the tracer's)")
    k2prime = p.add_mutually_exclusive_group()
    k2prime.add_argument("--k2prime", type=k2prime_value, metavar="PER_MIN|none",
                         help="reference efflux k2' in 1/min for the models that fix it "
                         "(default: the median k2/R1 of SRTM fits over the regions); none for "
                         "the Logan plot without the k2' term")
    k2prime.add_argument("--k2prime-region", metavar="COLUMN",
                         help="estimate k2' from this high-binding region by the three-parameter "
                         "MRTM (Ichise's two-step method), then fix it in every region")
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


def read_weights(args, table: pd.DataFrame) -> tuple[np.ndarray | None, str]:
    """A column of weights (removed from the table), or None for a scheme; and the source."""
    if args.weights in table.columns:
        weights = table.pop(args.weights).to_numpy(float)
        finite_or_fail(weights, f"{args.tacs}: weights column {args.weights!r}")
        return weights, args.weights
    if args.weights in WEIGHT_SCHEMES:
        if args.weights in ("counts", "kinfitr") and radionuclide(args) is None:
            raise PetbindError(f"--weights {args.weights} needs the radionuclide: give --tracer "
                               "or --radionuclide", EX_USAGE)
        return None, args.weights
    raise PetbindError(f"--weights {args.weights!r} is neither a scheme "
                       f"({', '.join(WEIGHT_SCHEMES)}) nor a column of {args.tacs}", EX_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model = get_model(args.model)
    timing, table = read_tacs(args.tacs)
    if args.reference not in table.columns:
        raise PetbindError(f"{args.tacs}: no column {args.reference!r} for --reference; "
                           f"columns are {', '.join(table.columns)}", EX_USAGE)
    weights, weights_source = read_weights(args, table)
    values = table.apply(pd.to_numeric, errors="coerce")
    finite_or_fail(values.to_numpy(), str(args.tacs))
    refuse_absurd(values, timing, args.tacs)
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
    region_tac = None
    if args.k2prime_region is not None:
        if args.k2prime_region not in regions:
            raise PetbindError(f"{args.tacs}: no target region {args.k2prime_region!r} for "
                               f"--k2prime-region; regions are {', '.join(regions)}", EX_USAGE)
        region_tac = values[args.k2prime_region].to_numpy(float)
    settings, sources = model_settings(args, model, timing, reference, tacs, weights,
                                       region_tac)
    fit = fit_model(args, model, timing, reference, tacs, weights, settings)
    record = {
        "Model": fit.model, "ReferenceRegion": args.reference, "Weights": weights_source,
        "FrameWeights": [round(float(w), 6) for w in weights],
        "Source": str(args.tacs), "Software": f"petbind {__version__}",
        "TimeUnits": "rate constants in 1/min; frame times read in seconds",
        **model.describe(settings), **sources, **se_columns(COLUMNS)}
    write_outputs(args.output, fit.table(regions, COLUMNS), record)
    for region, warnings in zip(regions, fit.warnings or []):
        for warning in warnings:
            print(f"petbind-tacs: warning: {region}: {warning}", file=sys.stderr)
    return 0


def refuse_absurd(values: pd.DataFrame, timing: FrameTiming, path: Path) -> None:
    """A TAC value orders of magnitude off the rest (:func:`absurd`) is refused: every model
    would return nonsense from it."""
    off = absurd(values.to_numpy(float))
    if off.any():
        frame, column = (int(i) for i in np.argwhere(off)[0])
        raise PetbindError(f"{path}: {values.columns[column]!r} is "
                           f"{values.iat[frame, column]:g} in the frame starting at "
                           f"{timing.start_s[frame]:g} s, over {ABSURD_FACTOR:g} times the "
                           "table's typical magnitude; fix or remove that value", EX_DATAERR)


def model_settings(args, model: KineticModel, timing: FrameTiming, reference: np.ndarray,
                   tacs: np.ndarray, weights: np.ndarray, region_tac: np.ndarray | None = None
                   ) -> tuple[ModelSettings, dict]:
    """What the model needs (theta3 range, k2', t*), from the options or derived (k2' from
    ``region_tac`` by MRTM with --k2prime-region), and where each came from (sidecar
    entries)."""
    sources: dict = {}
    k2a_range = None
    if "theta3_range_per_min" in model.needs:
        k2a_range, sources["Theta3RangeSource"] = theta3_range(args)
    k2p = None
    if "k2prime_per_min" in model.needs:
        k2p = args.k2prime
        refuse_k2prime_none(k2p, model)
        if region_tac is not None:
            try:
                k2p = k2prime_by_mrtm(timing, reference, region_tac, weights)
            except ValueError as err:
                raise PetbindError(f"{args.tacs}: --k2prime-region {args.k2prime_region}: "
                                   f"{err}", EX_DATAERR) from None
            sources["K2PrimeSource"] = (f"MRTM on {args.k2prime_region} (Ichise's two-step "
                                        "method)")
        elif k2p is None:
            try:
                k2p = estimate_k2prime(get_model("srtm").fit_regional(
                    timing, reference, tacs, weights, ModelSettings()))
            except ValueError as err:
                raise PetbindError(f"{args.tacs}: {err} (--k2prime)", EX_DATAERR) from None
        elif k2p <= 0:
            raise PetbindError(f"--k2prime must be positive, got {k2p}", EX_USAGE)
        sources.setdefault("K2PrimeSource", "--k2prime" if args.k2prime else "median SRTM k2/R1")
    return ModelSettings(theta3_range_per_min=k2a_range, n_bases=args.n_bases,
                         k2prime_per_min=k2p, tstar_min=args.tstar), sources


def fit_model(args, model: KineticModel, timing: FrameTiming, reference: np.ndarray,
              tacs: np.ndarray, weights: np.ndarray, settings: ModelSettings) -> Fit:
    try:
        return model.fit_regional(timing, reference, tacs, weights, settings)
    except ValueError as err:
        raise PetbindError(f"{args.tacs}: {err}; lower --tstar", EX_DATAERR) from None


def write_outputs(path: Path, table: pd.DataFrame, settings: dict) -> None:
    try:
        write_tsv(path, table)
        write_json(path.with_name(path.name.removesuffix(".tsv") + ".json"), settings)
    except OSError as err:
        raise PetbindError(f"{path}: cannot write ({err.strerror}); choose a writable -o",
                           EX_CANTCREAT) from None


def entry() -> None:
    sys.exit(run_cli("petbind-tacs", main))


if __name__ == "__main__":
    entry()
