"""Finding the scans to process in a BIDS dataset, and checking them before any work."""

from __future__ import annotations

import gzip
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_app.bids_io import bids_validator_executable, read_json_object
from bids_app.config import ParticipantConfig, RunConfig
from bids_app.errors import EX_DATAERR, EX_NOINPUT, EX_VALIDATION, EX_USAGE, PetbindError
from bids_app.names import ScanEntities
from bids_app.tracers import canonical_tracer_name
from workflows.kinetics.checks import ABSURD_FACTOR, absurd, magnitude_scale
from workflows.kinetics.frames import TimingError
from workflows.kinetics.metadata import PETMetadata


class NamedScan:
    """The names of a scan with ``subject``, ``session``, ``tracer`` and ``run``."""

    subject: str
    session: str | None
    tracer: str
    run: str | None

    @property
    def entities(self) -> ScanEntities:
        return ScanEntities(self.subject, self.session, self.tracer, self.run)

    @property
    def name(self) -> str:
        return self.entities.prefix

    @property
    def ident(self) -> str:
        """A name safe for nipype node names."""
        return self.name.replace("-", "")


@dataclass
class Scan(NamedScan):
    """One PET scan to process, the T1w it goes with, (after :func:`check_scan`) what its
    sidecar says, validated, and the image and normalisation another tool made, if used."""

    subject: str
    session: str | None
    tracer: str
    pet: Path
    sidecar: Path
    t1w: Path
    run: str | None = None
    metadata: PETMetadata | None = None
    # PET preprocessed elsewhere (PETPrep; :func:`bids_app.petprep.find_image`), else None
    preprocessed: dict | None = None
    # the T1w's normalisation made elsewhere (:func:`bids_app.petprep.find_transforms`)
    normalisation: dict | None = None


def strip_prefix(label: str, prefix: str) -> str:
    return label[len(prefix):] if label.startswith(prefix) else label


def check_dataset(bids_dir: Path) -> None:
    if not bids_dir.is_dir():
        raise PetbindError(f"{bids_dir}: no such directory; give the BIDS dataset as the first "
                           "argument", EX_NOINPUT)
    if not (bids_dir / "dataset_description.json").is_file():
        raise PetbindError(f"{bids_dir / 'dataset_description.json'}: missing; a BIDS dataset "
                           "needs it (Name, BIDSVersion)", EX_DATAERR)


def run_validator(bids_dir: Path) -> list[str]:
    """Errors reported by bids-validator-deno (messages; empty when valid)."""
    exe = bids_validator_executable()
    if exe is None:
        raise PetbindError("bids-validator-deno is not installed; reinstall petbind or use "
                           "--skip-bids-validation", EX_USAGE)
    proc = subprocess.run([exe, "--format", "json", str(bids_dir)], capture_output=True,
                          text=True, timeout=1800)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return [f"bids-validator-deno failed: {proc.stderr.strip()[:300]}"]
    errors = []
    for issue in report.get("issues", {}).get("issues", []):
        if issue.get("severity") == "error":
            where = issue.get("location", "")
            errors.append(f"{issue.get('code')}: {where}")
    return errors


def validate_or_fail(bids_dir: Path) -> None:
    errors = run_validator(bids_dir)
    if errors:
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise PetbindError(f"{bids_dir}: bids-validator-deno found {len(errors)} error(s): "
                           f"{shown}. Fix them or use --skip-bids-validation", EX_VALIDATION)


def find_scans(settings: RunConfig, allow_none: bool = False) -> list[Scan]:
    """PET scans (with their T1w) selected by participant, session, tracer and filter file
    (``settings``: the run section of the configuration); none is an error unless
    ``allow_none`` (scans come from derivatives)."""
    from bids import BIDSLayout, BIDSLayoutIndexer

    # metadata is read by petbind itself (clear errors for broken JSON), not indexed by pybids
    layout = BIDSLayout(str(settings.bids_dir), derivatives=False,
                        indexer=BIDSLayoutIndexer(validate=False, index_metadata=False))
    subjects = layout.get_subjects()
    wanted = [strip_prefix(p, "sub-") for p in settings.participant_labels] or subjects
    missing = sorted(set(wanted) - set(subjects))
    if missing:
        raise PetbindError(f"{settings.bids_dir}: participant(s) {', '.join(missing)} not in "
                           f"the dataset (it has {', '.join(subjects[:10]) or 'none'}); fix "
                           "--participant-label", EX_USAGE)
    filters = dict(settings.bids_filters.get("pet", {}))
    query = {"subject": wanted, "suffix": "pet", "extension": [".nii", ".nii.gz"],
             "datatype": "pet", **filters}
    if settings.session_labels:
        query["session"] = [strip_prefix(s, "ses-") for s in settings.session_labels]
    if settings.tracers:
        query["tracer"] = settings.tracers
    pets = layout.get(**query)
    if not pets and allow_none:
        return []
    if not pets:
        raise PetbindError(f"{settings.bids_dir}: no PET scan (sub-*/[ses-*/]pet/*_pet.nii[.gz]) "
                           "matches the selection; check the labels and filters", EX_NOINPUT)
    scans = []
    for pet in pets:
        ent = pet.get_entities()
        sub, ses, run = ent["subject"], ent.get("session"), ent.get("run")
        sidecar = Path(pet.path).with_name(Path(pet.path).name.split(".")[0] + ".json")
        tracer = ent.get("tracer") or tracer_from_sidecar(sidecar)
        t1w = find_t1w(layout, sub, ses, settings.bids_filters.get("t1w", {}))
        if t1w is None:
            raise PetbindError(f"{pet.path}: no T1w for sub-{sub}" +
                               (f" ses-{ses}" if ses else "") +
                               "; add sub-*/[ses-*/]anat/*_T1w.nii[.gz]", EX_NOINPUT)
        scans.append(Scan(sub, ses, str(tracer), Path(pet.path), sidecar, t1w,
                          str(run) if run is not None else None))
    names = [s.name for s in scans]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PetbindError(f"{settings.bids_dir}: several PET scans are named {dupes[0]}; "
                           "distinguish repeated scans with the run- entity", EX_DATAERR)
    return scans


def tracer_from_sidecar(sidecar: Path) -> str:
    """The tracer label of a PET file without a trc- entity: its sidecar's TracerName, as petbind
    spells tracers ("[11C]Carfentanil" -> "carfentanil")."""
    name = read_sidecar(sidecar).get("TracerName")
    label = canonical_tracer_name(name) if isinstance(name, str) else ""
    if not label:
        raise PetbindError(f"{sidecar}: no trc- entity in the file name and no usable "
                           "TracerName; name the file ..._trc-<tracer>_pet.nii.gz", EX_DATAERR)
    return label


def find_t1w(layout, subject: str, session: str | None, filters: dict) -> Path | None:
    query = {"subject": subject, "suffix": "T1w", "extension": [".nii", ".nii.gz"],
             "datatype": "anat", **filters}
    found = layout.get(session=session, **query) if session else []
    found = found or layout.get(**query)
    return Path(sorted(f.path for f in found)[0]) if found else None


def read_sidecar(path: Path) -> dict:
    if not path.is_file():
        raise PetbindError(f"{path}: missing; every PET image needs its JSON sidecar (or give "
                           "--sidecar)", EX_NOINPUT)
    return read_json_object(path)


def load_header(path: Path, what: str):
    try:
        img = nib.load(path)
        if str(path).endswith(".gz"):
            with gzip.open(path) as f:  # a truncated gzip fails only when read to the end
                while f.read(1 << 24):
                    pass
    except (OSError, EOFError, ValueError, nib.filebasedimages.ImageFileError) as err:
        raise PetbindError(f"{path}: cannot read the {what} ({err}); re-export it as NIfTI",
                           EX_DATAERR) from None
    return img


def check_affine(img, path: Path, what: str) -> None:
    affine = img.affine
    if not np.all(np.isfinite(affine)):
        raise PetbindError(f"{path}: the {what} has a broken affine (NaN/inf); fix the NIfTI "
                           "header (qform/sform)", EX_DATAERR)
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    header_zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    if (np.any(zooms < 1e-6) or abs(np.linalg.det(affine[:3, :3])) < 1e-9
            or np.any(header_zooms <= 0)):
        raise PetbindError(f"{path}: the {what} has a singular affine; fix the NIfTI header",
                           EX_DATAERR)
    cosines = affine[:3, :3] / zooms
    if not np.allclose(cosines.T @ cosines, np.eye(3), atol=1e-3):
        raise PetbindError(f"{path}: the {what} has a non-orthogonal (sheared) affine; "
                           "reslice it to an orthogonal grid", EX_DATAERR)


def read_metadata(sidecar: Path, n_frames: int | None = None) -> PETMetadata:
    """The sidecar's frame timing, radionuclide and decay state, checked (types and values)."""
    try:
        return PETMetadata.from_sidecar(read_sidecar(sidecar), n_frames=n_frames)
    except TimingError as err:
        raise PetbindError(f"{sidecar}: {err}", EX_DATAERR) from None


def check_scan(scan: Scan, settings: ParticipantConfig) -> None:
    """Our own checks of one scan before any work; raises PetbindError with the file and fix.
    Sets ``scan.metadata``: the sidecar, read and checked once for the whole run."""
    img = load_header(scan.pet, "PET image")
    if img.ndim != 4 or img.shape[3] < 4:
        raise PetbindError(f"{scan.pet}: PET must be 4D (dynamic) with at least 4 frames, got "
                           f"shape {img.shape}; petbind needs the frames", EX_DATAERR)
    check_affine(img, scan.pet, "PET image")
    metadata = read_metadata(scan.sidecar, n_frames=img.shape[3])
    timing = metadata.timing
    if timing.start_s[0] > 1800:
        raise PetbindError(f"{scan.sidecar}: the first frame starts {timing.start_s[0]:g} s "
                           "after TimeZero; frame times must count from injection (seconds)",
                           EX_DATAERR)
    if timing.duration_s[0] >= 3600:
        raise PetbindError(f"{scan.sidecar}: the first frame lasts {timing.duration_s[0]:g} s: a "
                           "static or summed image, not a dynamic scan (or FrameDuration in ms)",
                           EX_DATAERR)
    tracer = settings.tracer(scan.tracer)
    if tracer.radionuclide != metadata.radionuclide:
        raise PetbindError(f"{scan.sidecar}: TracerRadionuclide is {metadata.radionuclide} but "
                           f"{tracer.name} is labelled with {tracer.radionuclide}; fix the "
                           "sidecar, or give the tracer's radionuclide in --config-file",
                           EX_DATAERR)
    t1 = load_header(scan.t1w, "T1w image")
    if t1.ndim != 3 and not (t1.ndim == 4 and t1.shape[3] == 1):
        raise PetbindError(f"{scan.t1w}: the T1w must be 3D, got shape {t1.shape}; give one "
                           "volume", EX_DATAERR)
    check_affine(t1, scan.t1w, "T1w image")
    check_t1w_data(load_data(t1, scan.t1w, "T1w image"), scan.t1w)
    check_pet_data(load_data(img, scan.pet, "PET image"), scan.pet)
    scan.metadata = metadata


def load_data(img, path: Path, what: str) -> np.ndarray:
    """The image's voxels as float32; a one-line error for data that cannot be read (a file
    holding only a header, a wrong data type)."""
    try:
        return np.asarray(img.dataobj, dtype=np.float32)
    except (OSError, EOFError, ValueError, TypeError) as err:
        raise PetbindError(f"{path}: cannot read the {what}'s voxels ({err}); re-export it as "
                           "NIfTI", EX_DATAERR) from None


def check_t1w_data(data: np.ndarray, path: Path) -> None:
    if not np.isfinite(data).all():
        raise PetbindError(f"{path}: the T1w has NaN or infinite values "
                           f"({int((~np.isfinite(data)).sum())} voxels); fix the image",
                           EX_DATAERR)
    if np.ptp(data) == 0:
        raise PetbindError(f"{path}: the T1w holds one value everywhere; give the T1w image",
                           EX_DATAERR)


def check_pet_data(data: np.ndarray, path: Path) -> None:
    """Every frame finite and not all zero; no voxel orders of magnitude off the rest."""
    frame_ok = np.isfinite(data).all(axis=(0, 1, 2)) & (np.abs(data).max(axis=(0, 1, 2)) > 0)
    if not frame_ok.all():
        bad = int(np.flatnonzero(~frame_ok)[0])
        raise PetbindError(f"{path}: frame {bad} is all zero or has NaN values; remove the "
                           "frame (and its timing) or fix the reconstruction", EX_DATAERR)
    scale = magnitude_scale(data)
    for frame in range(data.shape[3]):                # frame by frame: little memory
        off = absurd(data[..., frame], scale)
        if off.any():
            where = tuple(int(i) for i in np.argwhere(off)[0])
            raise PetbindError(f"{path}: {int(off.sum())} value(s) in frame {frame} over "
                               f"{ABSURD_FACTOR:g} times the image's typical magnitude (e.g. "
                               f"{data[where + (frame,)]:g} at voxel {where}); fix the "
                               "reconstruction or set them to 0", EX_DATAERR)
