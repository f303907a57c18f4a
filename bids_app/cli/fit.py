"""petbind-fit: a voxelwise kinetic model on a dynamic PET image.

    petbind-fit PET.nii.gz --reference-mask MASK [--brain-mask MASK] [--sidecar PET.json]
                [--model srtm-bfm|mrtm2|logan-ref] [--k2prime PER_MIN] [--tstar MIN]
                -o OUT_PREFIX

writes <OUT_PREFIX>_model-<label>_meas-<parameter>_mimap.nii.gz (e.g. model-SRTM_meas-BPND), each
with a JSON sidecar, and for the models that give standard errors (mrtm2, logan-ref) their maps
in percent of the estimate, meas-<parameter>se (e.g. model-MRTM2_meas-BPNDse).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np

from bids_app import __version__, names
from bids_app.bids import read_metadata
from bids_app.bids_io import write_json
from bids_app.cli.common import (Parser, add_kinetic_options, k2prime_value,
                                 refuse_k2prime_none, run_cli, theta3_range)
from bids_app.errors import EX_CANTCREAT, EX_DATAERR, EX_NOINPUT, EX_USAGE, PetbindError
from bids_app.tracers import TRACERS, canonical_tracer_name
from workflows.imaging.voxelwise import EmptyReferenceError, fit_image, fit_info, save_map
from workflows.kinetics.checks import absurd, magnitude_scale
from workflows.kinetics.fitting import usable_cpus
from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import get_model, voxelwise_models
from workflows.kinetics.weights import WEIGHT_SCHEMES


def build_parser() -> Parser:
    p = Parser(prog="petbind-fit", description="A voxelwise kinetic model on a 4D PET image "
               "with a BIDS sidecar (FrameTimesStart, FrameDuration in seconds).")
    p.add_argument("pet", type=Path, metavar="PET.nii.gz")
    p.add_argument("--reference-mask", required=True, type=Path, metavar="MASK")
    p.add_argument("--brain-mask", type=Path, metavar="MASK",
                   help="voxels to fit (default: voxels whose mean activity exceeds 10%% of "
                   "the 99th percentile)")
    p.add_argument("--sidecar", type=Path, metavar="PET.json",
                   help="BIDS PET sidecar (default: the image's name with .json)")
    p.add_argument("--model", choices=voxelwise_models(), default="srtm-bfm",
                   help="voxelwise model (default srtm-bfm)")
    p.add_argument("--weights", choices=WEIGHT_SCHEMES, default="counts",
                   help="frame weights from the brain TAC (default: counts, as Magia)")
    add_kinetic_options(p)
    p.add_argument("--k2prime", type=k2prime_value, metavar="PER_MIN|none",
                   help="the reference region's efflux k2' in 1/min, which srtm2-bfm, mrtm2 and "
                   "logan-ref fix (e.g. the median k2/R1 of petbind-tacs' SRTM fits); none "
                   "for the Logan plot without the k2' term")
    p.add_argument("--tstar", type=float, metavar="MIN",
                   help="first frame mid-time (min) the linear models fit (default: the "
                   "model's: mrtm2 0, logan-ref 15)")
    p.add_argument("-o", "--output-prefix", required=True, type=Path, metavar="OUT_PREFIX")
    p.add_argument("--version", action="version", version=f"petbind {__version__}")
    return p


def load_image(path: Path, what: str) -> nib.Nifti1Image:
    if not path.is_file():
        raise PetbindError(f"{path}: no such file; give the {what}", EX_NOINPUT)
    try:
        img = nib.load(path, mmap=False)    # one sequential read: faster than page faults
        img.get_fdata(dtype=np.float32)  # force a read so truncated files fail here
    except Exception as err:
        raise PetbindError(f"{path}: cannot read the {what} ({err}); re-export it as NIfTI",
                           EX_DATAERR) from None
    return img


def load_mask(path: Path, pet: nib.Nifti1Image, what: str) -> np.ndarray:
    img = load_image(path, what)
    if img.shape[:3] != pet.shape[:3] or not np.allclose(img.affine, pet.affine, atol=1e-3):
        raise PetbindError(f"{path}: the {what} is not on the PET grid (shape {img.shape[:3]} vs "
                           f"{pet.shape[:3]}); resample it to the PET image", EX_DATAERR)
    mask = np.asarray(img.dataobj) > 0.5
    if mask.ndim > 3:
        mask = mask[..., 0]
    if not mask.any():
        raise PetbindError(f"{path}: the {what} is empty; it must select at least one voxel",
                           EX_DATAERR)
    return mask


def default_brain_mask(data: np.ndarray) -> np.ndarray:
    """Voxels whose mean activity over frames exceeds 10 % of the 99th percentile; the mean of
    each voxel's usable values (not NaN, not absurd), so that a broken value does not move a
    voxel in or out."""
    usable = ~absurd(data, magnitude_scale(data))
    total = np.where(usable, data, 0).sum(axis=3, dtype=np.float64)
    mean = total / np.maximum(usable.sum(axis=3), 1)
    positive = mean[mean > 0]
    return mean > 0.1 * np.percentile(positive, 99) if positive.size else mean > 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    model = get_model(args.model)
    pet = load_image(args.pet, "PET image")
    if pet.ndim != 4 or pet.shape[3] < 4:
        raise PetbindError(f"{args.pet}: PET must be 4D with at least 4 frames, got shape "
                           f"{pet.shape}", EX_DATAERR)
    sidecar_path = args.sidecar or names.sidecar(args.pet)
    metadata = read_metadata(sidecar_path, n_frames=pet.shape[3])  # errors before any work
    if not args.tracer and not args.theta3_range and metadata.tracer_name:
        if canonical_tracer_name(metadata.tracer_name) in TRACERS:
            args.tracer = metadata.tracer_name
    k2a_range, range_source = (theta3_range(args) if "theta3_range_per_min" in model.needs
                               else (None, None))
    if "k2prime_per_min" in model.needs and not (args.k2prime and args.k2prime > 0):
        raise PetbindError(f"--model {args.model} fixes k2': give --k2prime PER_MIN (positive, "
                           "1/min; e.g. the median k2/R1 of petbind-tacs' SRTM fits)", EX_USAGE)
    refuse_k2prime_none(args.k2prime, model)
    if args.tstar is not None and not args.tstar >= 0:
        raise PetbindError(f"--tstar must be 0 or more minutes, got {args.tstar}", EX_USAGE)
    settings = ModelSettings(theta3_range_per_min=k2a_range, n_bases=args.n_bases,
                             k2prime_per_min=args.k2prime, tstar_min=args.tstar)

    data = pet.get_fdata(dtype=np.float32)      # read once, by load_image's check
    reference_mask = load_mask(args.reference_mask, pet, "reference mask")
    brain = (load_mask(args.brain_mask, pet, "brain mask") if args.brain_mask
             else default_brain_mask(data))
    try:
        fitted = fit_image(data, metadata, reference_mask, brain, model, settings, args.weights,
                           reuse_data=True)
    except EmptyReferenceError as err:
        raise PetbindError(f"{args.reference_mask}: {err}; check that the mask lies on the "
                           "brain and the image's values", EX_DATAERR) from None
    except ValueError as err:
        raise PetbindError(f"{args.pet}: {err}; check the image", EX_DATAERR) from None
    if fitted.excluded.any():
        print(f"petbind-fit: warning: {int(fitted.excluded.sum())} voxel(s) with NaN or absurd "
              "values were left out of the fit (NaN in the maps)", file=sys.stderr)
    info = {"Model": model.label, "ModelMethod": model.title,
            **fit_info(fitted, model, settings, args.weights),
            "ReferenceRegion": str(args.reference_mask),
            "Sources": [str(args.pet), str(sidecar_path), str(args.reference_mask)]
            + ([str(args.brain_mask)] if args.brain_mask else []),
            "SoftwareName": "petbind", "SoftwareVersion": __version__}
    if range_source:
        info["Theta3RangeSource"] = range_source
    if "k2prime_per_min" in model.needs:
        info["K2PrimeSource"] = "--k2prime"

    def write(meas: str, volume: np.ndarray, description: dict) -> None:
        path = Path(f"{args.output_prefix}_" + names.filename("mimap", ".nii.gz",
                                                              model=model.label, meas=meas))
        save_map(volume, pet.affine, path)
        write_json(names.sidecar(path), {**info, **description})

    try:                    # gzip releases the GIL: the maps compress side by side
        with ThreadPoolExecutor(usable_cpus()) as pool:
            for done in [pool.submit(write, *m) for m in fitted.maps(model.maps)]:
                done.result()
    except OSError as err:
        raise PetbindError(f"{err.filename}: cannot write ({err.strerror}); choose a writable "
                           "-o prefix", EX_CANTCREAT) from None
    return 0


def entry() -> None:
    sys.exit(run_cli("petbind-fit", main))


if __name__ == "__main__":
    entry()
