"""Finding the scans to process in a BIDS dataset, and checking them before any work."""

from __future__ import annotations

import gzip
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_app.bids_io import bids_validator_executable
from bids_app.config import Settings
from bids_app.errors import EX_DATAERR, EX_NOINPUT, EX_VALIDATION, EX_USAGE, PetbindError
from workflows.kinetics.frames import FrameTiming, TimingError, normalise_radionuclide


@dataclass
class Scan:
    """One PET scan to process and the T1w it goes with."""

    subject: str
    session: str | None
    tracer: str
    pet: Path
    sidecar: Path
    t1w: Path
    run: str | None = None

    @property
    def name(self) -> str:
        parts = [f"sub-{self.subject}"]
        if self.session:
            parts.append(f"ses-{self.session}")
        parts.append(f"trc-{self.tracer}")
        if self.run:
            parts.append(f"run-{self.run}")
        return "_".join(parts)

    @property
    def ident(self) -> str:
        """A name safe for nipype node names."""
        return self.name.replace("-", "")


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


def find_scans(settings: Settings) -> list[Scan]:
    """PET scans (with their T1w) selected by participant, session, tracer and filter file."""
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
    if not pets:
        raise PetbindError(f"{settings.bids_dir}: no PET scan (sub-*/[ses-*/]pet/*_pet.nii[.gz]) "
                           "matches the selection; check the labels and filters", EX_NOINPUT)
    scans = []
    for pet in pets:
        ent = pet.get_entities()
        sub, ses, run = ent["subject"], ent.get("session"), ent.get("run")
        sidecar = Path(pet.path).with_name(Path(pet.path).name.split(".")[0] + ".json")
        meta = read_sidecar(sidecar)
        tracer = ent.get("tracer") or meta.get("TracerName") or "unknown"
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
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PetbindError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); fix the "
                           "file", EX_DATAERR) from None
    if not isinstance(content, dict):
        raise PetbindError(f"{path}: must be a JSON object", EX_DATAERR)
    return content


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


def check_scan(scan: Scan, settings: Settings) -> None:
    """Our own checks of one scan before any work; raises PetbindError with the file and fix."""
    meta = read_sidecar(scan.sidecar)
    img = load_header(scan.pet, "PET image")
    if img.ndim != 4 or img.shape[3] < 4:
        raise PetbindError(f"{scan.pet}: PET must be 4D (dynamic) with at least 4 frames, got "
                           f"shape {img.shape}; petbind needs the frames", EX_DATAERR)
    check_affine(img, scan.pet, "PET image")
    try:
        timing = FrameTiming.from_sidecar(meta, n_frames=img.shape[3])
    except TimingError as err:
        raise PetbindError(f"{scan.sidecar}: {err}", EX_DATAERR) from None
    if timing.start_s[0] > 1800:
        raise PetbindError(f"{scan.sidecar}: the first frame starts {timing.start_s[0]:g} s "
                           "after TimeZero; frame times must count from injection (seconds)",
                           EX_DATAERR)
    if timing.duration_s[0] >= 3600:
        raise PetbindError(f"{scan.sidecar}: the first frame lasts {timing.duration_s[0]:g} s: a "
                           "static or summed image, not a dynamic scan (or FrameDuration in ms)",
                           EX_DATAERR)
    try:
        normalise_radionuclide(meta.get("TracerRadionuclide", ""))
    except TimingError as err:
        raise PetbindError(f"{scan.sidecar}: TracerRadionuclide: {err}", EX_DATAERR) from None
    if "ImageDecayCorrected" not in meta:
        raise PetbindError(f"{scan.sidecar}: no ImageDecayCorrected; add true or false",
                           EX_DATAERR)
    settings.tracer(scan.tracer)
    t1 = load_header(scan.t1w, "T1w image")
    if t1.ndim != 3 and not (t1.ndim == 4 and t1.shape[3] == 1):
        raise PetbindError(f"{scan.t1w}: the T1w must be 3D, got shape {t1.shape}; give one "
                           "volume", EX_DATAERR)
    check_affine(t1, scan.t1w, "T1w image")
    data = np.asarray(img.dataobj, dtype=np.float32)
    frame_ok = np.isfinite(data).all(axis=(0, 1, 2)) & (np.abs(data).max(axis=(0, 1, 2)) > 0)
    if not frame_ok.all():
        bad = int(np.flatnonzero(~frame_ok)[0])
        raise PetbindError(f"{scan.pet}: frame {bad} is all zero or has NaN values; remove the "
                           "frame (and its timing) or fix the reconstruction", EX_DATAERR)
