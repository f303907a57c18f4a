"""petbind-simulate OUT_DIR: write a BIDS PET dataset of digital phantoms and its truth."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Sequence

from bids_app import __version__
from bids_app.cli.common import Parser, run_cli
from bids_app.errors import EX_CANTCREAT, EX_NOINPUT, EX_USAGE, PetbindError
from bids_app.simulate import SimulationConfig, simulate
from workflows.simulation.anatomy import DEFACE_MARGIN_MM
from workflows.simulation.receptors import PATTERNS, parse_effects


def build_parser() -> Parser:
    p = Parser(prog="petbind-simulate", description=__doc__)
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--n-subjects", type=int, help="number of subjects, split evenly over the "
                   "groups (default 4; ignored when --groups gives counts)")
    p.add_argument("--groups", default="secure,insecure",
                   help="group names, optionally with sizes: secure=16,avoidant=14,ambivalent=9 "
                   "(default: secure,insecure)")
    p.add_argument("--group-column", default="group", help="participants.tsv column (default "
                   "group)")
    p.add_argument("--tracer", action="append", choices=sorted(PATTERNS),
                   help="repeatable (default: carfentanil)")
    p.add_argument("--effect", action="append", default=[], metavar="REGION=FRACTION",
                   help="BPND in REGION is FRACTION lower in every group but the first; "
                   "repeatable; none gives null data")
    p.add_argument("--motion-mm", type=float, default=1.0,
                   help="SD of the head displacement at the end of the scan (default 1 mm)")
    p.add_argument("--noise", type=float, default=0.1, metavar="LEVEL",
                   help="relative noise SD of a brain voxel in the last frame (default 0.1)")
    p.add_argument("--voxel-size", type=float, default=2.0, metavar="MM",
                   help="PET voxel size (default 2 mm)")
    p.add_argument("--t1-voxel-size", type=float, default=1.5, metavar="MM",
                   help="T1w voxel size (default 1.5 mm)")
    p.add_argument("--psf-fwhm", type=float, default=2.5, metavar="MM",
                   help="scanner resolution (default 2.5 mm, HRRT-like)")
    add_session_options(p)
    p.add_argument("--target-model", choices=["srtm", "2tc"], default="srtm",
                   help="one-tissue targets (SRTM holds) or two-tissue targets (default srtm)")
    p.add_argument("--k4", type=float, default=0.5, help="k4 in 1/min for --target-model 2tc")
    p.add_argument("--age-effect", type=float, default=0.0, metavar="FRACTION",
                   help="BPND change per decade of age (e.g. -0.03)")
    p.add_argument("--sex-effect", type=float, default=0.0, metavar="FRACTION",
                   help="BPND higher by FRACTION in women")
    p.add_argument("--derivatives-only", action="store_true",
                   help="fast mode: participant-level MNI BPND maps under "
                   "OUT_DIR/derivatives/petbind instead of raw images")
    p.add_argument("--derivatives-noise", type=float, default=0.15, metavar="LEVEL",
                   help="--derivatives-only: SD of the maps' estimation noise as a fraction of "
                   "(0.3 + BPND) (default 0.15; 0 writes the truth)")
    p.add_argument("--t1w", type=Path, metavar="FILE",
                   help="build every subject on this T1w (e.g. a real head) instead of a "
                   "deformed template; its MNI mapping comes from petbind's anatomical stage")
    p.add_argument("--skull-stripped", action="store_true",
                   help="write the T1w brain-extracted (zero outside the brain), as some shared "
                   "datasets are")
    p.add_argument("--deface", action="store_true",
                   help="remove the T1w's face (set to 0 in front of and below a plane under the "
                   "brow, as defacing tools do), as datasets shared on OpenNeuro are")
    p.add_argument("--deface-margin-mm", type=float, default=DEFACE_MARGIN_MM, metavar="MM",
                   help="--deface keeps the brain and this much around it (default "
                   f"{DEFACE_MARGIN_MM:g} mm, about as far as pydeface and quickshear stay; "
                   "smaller is a harsher tool)")
    p.add_argument("--petprep-layout", action="store_true",
                   help="also write OUT_DIR/derivatives/petprep as PETPrep would (motion-"
                   "corrected PET in T1w space, a FreeSurfer-named segmentation seg-gtm, "
                   "regional TACs), for `petbind ... --derivatives OUT_DIR/derivatives/petprep`")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--version", action="version", version=f"petbind {__version__}")
    return p


def add_session_options(p: Parser) -> None:
    """Sessions: blocked (fixed occupancy or from a dose) and test-retest."""
    p.add_argument("--sessions", help="e.g. baseline,blocked: the later sessions have receptor "
                   "occupancy --occupancy")
    p.add_argument("--occupancy", type=float, default=0.0,
                   help="fraction of receptors blocked in the sessions after the first")
    p.add_argument("--exposure-column", metavar="COLUMN",
                   help="with --ec50: sub-*_sessions.tsv gets this column (e.g. dose_mg), 0 in "
                   "the first session and the participant's exposure in the later ones")
    p.add_argument("--ec50", type=float, metavar="VALUE",
                   help="occupancy in the later sessions follows exposure / (exposure + EC50), "
                   "exposures log-spaced across participants over --exposure-range x EC50")
    p.add_argument("--exposure-range", type=float, nargs=2, default=(0.25, 4.0),
                   metavar=("LOW", "HIGH"), help="participants' exposures as multiples of EC50 "
                   "(default 0.25 4)")
    p.add_argument("--retest-cv", type=float, default=0.0, metavar="CV",
                   help="every session's regional BPND varies by this within-subject CV "
                   "(e.g. 0.05 with --sessions test,retest)")


def parse_groups(text: str, n_subjects: int | None) -> dict[str, int]:
    groups: dict[str, int] = {}
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise PetbindError("--groups is empty", EX_USAGE)
    sized = ["=" in item for item in items]
    if any(sized) and not all(sized):
        raise PetbindError("--groups: give a size for every group or for none", EX_USAGE)
    for item in items:
        name, _, size = item.partition("=")
        if not name.isalnum():
            raise PetbindError(f"--groups: group name {name!r} must be letters and digits",
                               EX_USAGE)
        groups[name] = int(size) if size else 0
    if not all(sized):
        n = n_subjects if n_subjects is not None else 4
        base, extra = divmod(n, len(groups))
        for i, name in enumerate(groups):
            groups[name] = base + (1 if i < extra else 0)
    if any(v < 1 for v in groups.values()):
        raise PetbindError("--groups: every group needs at least one subject", EX_USAGE)
    return groups


def check_exposure_options(args, sessions: list[str]) -> None:
    if (args.ec50 is None) != (args.exposure_column is None):
        raise PetbindError("--ec50 and --exposure-column go together", EX_USAGE)
    if args.ec50 is not None:
        if len(sessions) < 2:
            raise PetbindError("--ec50: give --sessions with a baseline and later sessions",
                               EX_USAGE)
        if not args.ec50 > 0 or args.occupancy:
            raise PetbindError("--ec50: a positive exposure, and no --occupancy (the exposure "
                               "sets it)", EX_USAGE)
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", args.exposure_column):
            raise PetbindError(f"--exposure-column {args.exposure_column!r}: letters, digits "
                               "and underscores", EX_USAGE)
        lo, hi = args.exposure_range
        if not 0 < lo <= hi:
            raise PetbindError("--exposure-range: 0 < LOW <= HIGH", EX_USAGE)
    if not 0 <= args.derivatives_noise < 5:
        raise PetbindError("--derivatives-noise: a level from 0 (e.g. 0.15)", EX_USAGE)
    if not 0 <= args.retest_cv < 0.5:
        raise PetbindError("--retest-cv: a CV from 0 to 0.5 (e.g. 0.05)", EX_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        effects = parse_effects(args.effect)
    except ValueError as err:
        raise PetbindError(str(err), EX_USAGE) from None
    sessions = [s.strip() for s in args.sessions.split(",")] if args.sessions else []
    if any(not s.isalnum() for s in sessions):
        raise PetbindError("--sessions: labels must be letters and digits", EX_USAGE)
    if not 0 <= args.occupancy < 1:
        raise PetbindError("--occupancy must be in [0, 1)", EX_USAGE)
    check_exposure_options(args, sessions)
    if args.deface_margin_mm < 0:
        raise PetbindError("--deface-margin-mm must be 0 or more", EX_USAGE)
    if args.petprep_layout and args.derivatives_only:
        raise PetbindError("--petprep-layout needs images: leave out --derivatives-only",
                           EX_USAGE)
    cfg = SimulationConfig(
        out_dir=args.out_dir, groups=parse_groups(args.groups, args.n_subjects),
        group_column=args.group_column, tracers=args.tracer or ["carfentanil"], effects=effects,
        motion_mm=args.motion_mm, noise=args.noise, voxel_mm=args.voxel_size,
        t1_voxel_mm=args.t1_voxel_size, psf_fwhm_mm=args.psf_fwhm, sessions=sessions,
        occupancy=args.occupancy, exposure_column=args.exposure_column, ec50=args.ec50,
        exposure_range=tuple(args.exposure_range), retest_cv=args.retest_cv, seed=args.seed,
        target_model=args.target_model,
        k4_per_min=args.k4, age_effect_per_decade=args.age_effect, sex_effect=args.sex_effect,
        derivatives_only=args.derivatives_only, derivatives_noise=args.derivatives_noise,
        t1w=args.t1w,
        skull_stripped=args.skull_stripped, defaced=args.deface,
        deface_margin_mm=args.deface_margin_mm,
        petprep_layout=args.petprep_layout)
    if cfg.t1w is not None and not cfg.t1w.is_file():
        raise PetbindError(f"{cfg.t1w}: no such T1w image", EX_NOINPUT)
    t0 = time.perf_counter()
    try:
        simulate(cfg, log=(lambda *_: None) if args.quiet else
                 (lambda msg: print(msg, file=sys.stderr, flush=True)))
    except OSError as err:
        raise PetbindError(f"{err.filename or args.out_dir}: cannot write ({err.strerror}); "
                           "choose a writable OUT_DIR", EX_CANTCREAT) from None
    if not args.quiet:
        print(f"petbind-simulate: wrote {cfg.n_subjects} subjects to {args.out_dir} in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


def entry() -> None:
    sys.exit(run_cli("petbind-simulate", main))


if __name__ == "__main__":
    entry()
