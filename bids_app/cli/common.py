"""What every petbind command shares: usage errors with exit code 64, one-line errors with the
BIDS execution-spec exit codes instead of tracebacks, and the choice of kinetic settings."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable, NoReturn, Sequence

import numpy as np

from bids_app.errors import EX_DATAERR, EX_FAILURE, EX_USAGE, PetbindError
from bids_app.tracers import lookup_tracer
from workflows.kinetics.frames import TimingError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits with 64 (EX_USAGE) as the BIDS-Apps spec asks."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


def run_cli(prog: str, main: Callable[[Sequence[str] | None], int],
            argv: Sequence[str] | None = None) -> int:
    """Run ``main`` and turn known errors into one line on stderr and an exit code."""
    try:
        return main(argv)
    except PetbindError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    except TimingError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EX_DATAERR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EX_FAILURE


def add_kinetic_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracer", help="tracer name (sets the default theta3 range and "
                        "radionuclide), e.g. carfentanil, madam, raclopride")
    parser.add_argument("--theta3-range", nargs=2, type=float, metavar=("LO", "HI"),
                        help="theta3 (= k2a) range of the basis functions in 1/min, for "
                        "decay-corrected data (default: the tracer's)")
    parser.add_argument("--n-bases", type=int, default=300,
                        help="number of log-spaced basis functions (default 300)")


def k2prime_value(text: str) -> float:
    """``--k2prime``: a rate in 1/min, or ``none`` (inf: the Logan plot without the k2' term)."""
    if text.strip().lower() == "none":
        return math.inf
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or none: {text!r}") from None


def refuse_k2prime_none(k2prime: float | None, model) -> None:
    """``--k2prime none`` only for a model that runs without k2' (the Logan plot)."""
    if k2prime == math.inf and not getattr(model, "k2prime_optional", False):
        raise PetbindError(f"--k2prime none: {model.name} needs a k2'; only logan-ref runs "
                           "without it", EX_USAGE)


def theta3_range(args: argparse.Namespace) -> tuple[tuple[float, float], str]:
    """The k2a range to use and where it came from."""
    if args.theta3_range:
        lo, hi = args.theta3_range
        if not 0 < lo < hi:
            raise PetbindError(f"--theta3-range needs 0 < LO < HI, got {lo} {hi}", EX_USAGE)
        return (lo, hi), "--theta3-range"
    if args.tracer:
        try:
            tracer = lookup_tracer(args.tracer)
        except KeyError as err:
            raise PetbindError(str(err.args[0]), EX_USAGE) from None
        return tracer.k2a_range_per_min(), (
            f"{tracer.name} default {tracer.theta3_range_per_min} (Magia, decay-uncorrected) "
            f"minus lambda of {tracer.radionuclide}")
    raise PetbindError("the basis-function method needs a theta3 range: give --tracer "
                       "(a known tracer) or --theta3-range LO HI", EX_USAGE)


def radionuclide(args: argparse.Namespace) -> str | None:
    if getattr(args, "radionuclide", None):
        return args.radionuclide
    if args.tracer:
        try:
            return lookup_tracer(args.tracer).radionuclide
        except KeyError:
            return None
    return None


def finite_or_fail(values: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(values)):
        raise PetbindError(f"{what} has NaN or infinite values; remove or fix those frames",
                           EX_DATAERR)
