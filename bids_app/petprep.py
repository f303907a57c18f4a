"""PETPrep derivatives as input (``--derivatives``): the folders recognised by their
dataset_description.json, the regional TAC tables found in them, and each scan's tables checked
before any work (frame times against the raw sidecar, values, the reference region's labels).

PETPrep writes ``*_desc-preproc_seg-<seg>[_pvc-<method>]_tacs.tsv`` (older releases
``_timeseries.tsv``, times as ``FrameTimesStart``/``FrameTimesEnd``), one column per label of
the segmentation, ``n/a`` for missing values, times in seconds from the raw sidecar's TimeZero.
petbind's models count from injection: the times are shifted by the raw ``InjectionStart``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import names
from bids_app.config import ParticipantConfig, RunConfig
from bids_app.bids import NamedScan
from bids_app.bids_io import read_json_object, read_text_tsv
from bids_app.errors import EX_DATAERR, EX_NOINPUT, EX_USAGE, PetbindError
from bids_app.tracers import FREESURFER_REFERENCE, canonical_tracer_name
from workflows.kinetics.frames import FrameTiming, TimingError
from workflows.kinetics.metadata import PETMetadata

TIME_COLUMNS = (("frame_start", "frame_end"), ("FrameTimesStart", "FrameTimesEnd"))
TAC_SUFFIXES = ("tacs", "timeseries")
PREFERRED_SEG = "gtm"               # PETPrep's default segmentation, chosen when there are several
TIME_TOLERANCE_S = 1.0              # frame times of the table and the raw sidecar may differ so
# FreeSurfer labels that are not brain tissue (fluid, vessels, outside the brain): their TACs
# are not fitted (PETPrep's gtm segmentation has them; a BPND there means nothing)
NOT_BRAIN = re.compile(r"Ventricle|Vent$|CSF|vessel|choroid-plexus|Skull|AirCavity|"
                       r"ExtraCerebral|Optic-Chiasm|^Background$|^Unknown$", re.IGNORECASE)


@dataclass(frozen=True)
class PetprepFolder:
    root: Path
    version: str

    @property
    def source(self) -> str:
        return f"PETPrep {self.version}"


@dataclass
class TacScan(NamedScan):
    """One scan's regional TACs from PETPrep: the table of uncorrected TACs and those
    partial-volume corrected (by their ``pvc-`` label), the raw sidecar, and (after
    :func:`check_tac_scan`) the plain record the graph's nodes work from."""

    subject: str
    session: str | None
    tracer: str
    run: str | None
    seg: str
    tables: dict[str | None, Path]            # pvc label (None: uncorrected) -> TAC table
    raw_sidecar: Path
    folder: PetprepFolder
    reference_files: dict[str, Path] = field(default_factory=dict)   # label- -> TAC file
    record: dict | None = None


def derivative_folders(paths: list[Path]) -> tuple[list[PetprepFolder], list[Path]]:
    """The PETPrep folders among ``--derivatives`` and the other derivative folders (ignored);
    a folder without dataset_description.json is an error."""
    petprep, other = [], []
    for path in paths:
        if not path.is_dir():
            raise PetbindError(f"--derivatives {path}: no such directory; give PETPrep's output "
                               "folder", EX_NOINPUT)
        description = path / "dataset_description.json"
        if not description.is_file():
            raise PetbindError(f"{description}: missing; a derivatives folder needs it (PETPrep "
                               "writes it: give the folder PETPrep made, e.g. "
                               "derivatives/petprep)", EX_NOINPUT)
        content = read_json_object(description, "dataset description")
        generated = content.get("GeneratedBy")
        tools = [g for g in generated if isinstance(g, dict)] if isinstance(generated,
                                                                            list) else []
        names_ = [str(g.get("Name", "")) for g in tools] + [str(content.get("Name", ""))]
        if any("petprep" in n.lower() for n in names_):
            version = next((str(g.get("Version", "unknown")) for g in tools
                            if "petprep" in str(g.get("Name", "")).lower()), "unknown")
            petprep.append(PetprepFolder(path.resolve(), version))
        else:
            other.append(path)
    if paths and not petprep:
        raise PetbindError(f"--derivatives {paths[0]}: no PETPrep folder (its "
                           "dataset_description.json names no PETPrep in GeneratedBy); give "
                           "PETPrep's output folder", EX_DATAERR)
    return petprep, other


def _tac_files(folder: PetprepFolder) -> list[tuple[dict, Path]]:
    """Every TAC table of the folder with its entities (names petbind cannot parse skipped)."""
    found = []
    for suffix in TAC_SUFFIXES:
        for path in sorted(folder.root.glob(f"sub-*/**/pet/*_{suffix}.tsv")):
            try:
                entities, _, _ = names.parse(path.name)
            except ValueError:
                continue
            # labels that could not name petbind's outputs (not BIDS either) are not taken
            if ("sub" in entities and entities.get("desc", "preproc") == "preproc"
                    and all(re.fullmatch(r"[A-Za-z0-9]+", v) for v in entities.values())):
                found.append((entities, path))
    return found


def _selected(entities: dict, settings: RunConfig) -> bool:
    wanted = [s.removeprefix("sub-") for s in settings.participant_labels]
    sessions = [s.removeprefix("ses-") for s in settings.session_labels]
    return ((not wanted or entities["sub"] in wanted)
            and (not sessions or entities.get("ses") in sessions))


def find_tac_scans(folders: list[PetprepFolder], settings: RunConfig
                   ) -> tuple[list[TacScan], list[tuple[str, PetbindError]]]:
    """The scans with PETPrep TAC tables, selected by participant, session and tracer; per scan
    one segmentation (``gtm`` where there are several) with its pvc- variants. Scans whose raw
    sidecar is missing or names no tracer are returned apart, with the error."""
    from bids_app.bids import tracer_from_sidecar

    grouped: dict[tuple, dict] = {}
    for folder in folders:
        for entities, path in _tac_files(folder):
            if not _selected(entities, settings):
                continue
            key = tuple(entities.get(k) for k in ("sub", "ses", "trc", "rec", "run"))
            scan = grouped.setdefault(key, {"folder": folder, "tables": {}, "refs": {}})
            label = entities.get("label") or entities.get("ref")
            if label is not None:
                scan["refs"][label] = path
            elif "seg" in entities:
                scan["tables"].setdefault(entities["seg"], {})[entities.get("pvc")] = path
    scans, refused = [], []
    for (sub, ses, trc, rec, run), found in sorted(grouped.items(), key=lambda kv: str(kv[0])):
        if not found["tables"]:
            continue
        segs = sorted(found["tables"], key=lambda s: (s != PREFERRED_SEG, s))
        raw = names.subject_dir(settings.bids_dir, sub, ses, "pet") / names.filename(
            "pet", ".json", sub=sub, ses=ses, trc=trc, rec=rec, run=run)
        table = next(iter(found["tables"][segs[0]].values()))
        try:
            if not raw.is_file():
                raise PetbindError(f"{table}: its raw sidecar {raw} is missing; PETPrep's TACs "
                                   "need it (InjectionStart, TracerRadionuclide, frame times)",
                                   EX_NOINPUT)
            tracer = trc or tracer_from_sidecar(raw)
        except PetbindError as err:
            refused.append((table.name.split("_desc-")[0], err))
            continue
        if settings.tracers and tracer not in settings.tracers:
            continue
        scans.append(TacScan(sub, ses, canonical_tracer_name(tracer), run, segs[0],
                             found["tables"][segs[0]], raw, found["folder"], found["refs"]))
    return scans, refused


def numbers_or_na(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A text table's columns as numbers (NaN for n/a or empty); other text is an error naming
    the file, the column and the value."""
    text = table.apply(lambda c: c.str.strip())
    values = text.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & ~text.isin(["n/a", ""])
    if bad.any().any():
        column = bad.any().idxmax()
        found = text.loc[bad[column], column].iloc[0]
        raise PetbindError(f"{path}: column {column!r} holds {found!r}, not a number or n/a; "
                           "fix the file", EX_DATAERR)
    return values


def read_tac_table(path: Path) -> tuple[FrameTiming, pd.DataFrame, tuple[str, str]]:
    """A PETPrep TAC table: frame timing (s from TimeZero), the region columns as numbers (NaN
    for n/a) and the names of its time columns. Non-numeric text is an error naming it."""
    table = read_text_tsv(path)
    columns = next((c for c in TIME_COLUMNS if set(c) <= set(table.columns)), None)
    if columns is None:
        raise PetbindError(f"{path}: no frame_start and frame_end columns (seconds); not a "
                           "PETPrep TAC table", EX_DATAERR)
    values = numbers_or_na(table, path)
    start, end = (values[c].to_numpy(float) for c in columns)
    if np.isnan(start).any() or np.isnan(end).any():
        raise PetbindError(f"{path}: frame times are missing (n/a); every frame needs its "
                           "start and end", EX_DATAERR)
    try:
        timing = FrameTiming(start, end - start)
    except TimingError as err:
        raise PetbindError(f"{path}: {err}", EX_DATAERR) from None
    return timing, values.drop(columns=list(columns)), columns


def injection_start_s(sidecar: dict, path: Path) -> float:
    """InjectionStart (s from TimeZero) of a raw sidecar; 0 where it is absent."""
    value = sidecar.get("InjectionStart", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise PetbindError(f"{path}: InjectionStart must be a number of seconds from TimeZero, "
                           f"not {value!r}", EX_DATAERR)
    return float(value)


def scan_metadata(scan: TacScan, n_frames: int, timing: FrameTiming, table: Path
                  ) -> tuple[PETMetadata, float, int, float]:
    """The raw sidecar's metadata with times from injection, checked against a TAC table's
    frames; the shift (InjectionStart, s); the first frame kept (frames that end before
    injection are dropped); and the factor of that frame's mean when it began before
    injection (its activity came after: mean over the part after injection)."""
    from bids_app.bids import read_metadata, read_sidecar

    raw = read_metadata(scan.raw_sidecar)
    if raw.timing.n_frames != n_frames:
        raise PetbindError(f"{table}: {n_frames} frames but its raw sidecar {scan.raw_sidecar} "
                           f"lists {raw.timing.n_frames}; the TACs must have one row per frame",
                           EX_DATAERR)
    off = np.abs(raw.timing.start_s - timing.start_s).max()
    if off > TIME_TOLERANCE_S:
        raise PetbindError(f"{table}: frame starts differ from {scan.raw_sidecar.name}'s "
                           f"FrameTimesStart by up to {off:g} s; both count from TimeZero",
                           EX_DATAERR)
    shift = injection_start_s(read_sidecar(scan.raw_sidecar), scan.raw_sidecar)
    start, end = timing.start_s - shift, timing.end_s - shift
    first = int(np.searchsorted(end, 0.0, side="right"))
    if n_frames - first < 4:
        raise PetbindError(f"{scan.raw_sidecar}: InjectionStart {shift:g} s leaves "
                           f"{n_frames - first} frame(s) after injection; fix InjectionStart "
                           "(seconds from TimeZero)", EX_DATAERR)
    scale = float((end[first] - start[first]) / end[first]) if start[first] < 0 else 1.0
    start = np.maximum(start[first:], 0.0)
    shifted = FrameTiming(start, end[first:] - start)
    return (PETMetadata(shifted, raw.radionuclide, raw.decay_corrected,
                        raw.decay_correction_time_s - shift, raw.tracer_name),
            shift, first, scale)


def reference_labels(scan: TacScan, reference_region: str, requested: list[str] | None
                     ) -> list[str]:
    """The segmentation labels of the reference region: ``--reference-tac``, else the tracer's
    reference region in FreeSurfer names."""
    if requested:
        return list(requested)
    if reference_region not in FREESURFER_REFERENCE:
        raise PetbindError(f"{scan.name}: petbind has no FreeSurfer labels for the "
                           f"{reference_region} reference region of {scan.tracer}; name them "
                           "with --reference-tac LABEL [LABEL ...]", EX_USAGE)
    return list(FREESURFER_REFERENCE[reference_region])


def label_volumes(scan: TacScan, labels: list[str]) -> tuple[list[float] | None, str]:
    """Volumes (mm3) of ``labels`` from PETPrep's ``_seg-<seg>_morph.tsv`` of the scan's
    session (else the subject's), and how the labels are weighted."""
    base = scan.folder.root / f"sub-{scan.subject}"
    pattern = f"anat/*seg-{scan.seg}_morph.tsv"
    candidates = (sorted((base / f"ses-{scan.session}").glob(pattern)) if scan.session
                  else []) + sorted(base.glob(pattern))
    for path in candidates:
        try:
            morph = pd.read_csv(path, sep="\t")
            column = next(c for c in ("volume-mm3", "volume_mm3", "volume") if c in morph)
            volumes = morph.set_index("name")[column].astype(float)
            weights = [float(volumes[label]) for label in labels]
        except (StopIteration, KeyError, ValueError, pd.errors.ParserError):
            continue
        if all(np.isfinite(w) and w > 0 for w in weights):
            return weights, f"volume-weighted ({path.name})"
    return None, "unweighted mean (no _morph.tsv with the labels' volumes)"


def check_tac_table(scan: TacScan, path: Path, labels: list[str]) -> dict:
    """One TAC table checked: its frames against the raw sidecar, the reference labels present
    and measured in every frame; regions with n/a values are left out (and listed)."""
    timing, values, columns = read_tac_table(path)
    if values.isna().all().all():
        raise PetbindError(f"{path}: every value is n/a; PETPrep extracted no TAC (check its "
                           "segmentation and logs)", EX_DATAERR)
    metadata, shift, first, scale = scan_metadata(scan, timing.n_frames, timing, path)
    missing = [label for label in labels if label not in values.columns]
    reference_file = None
    if missing == labels and len(labels) == 1 and labels[0] in scan.reference_files:
        # PETPrep's own reference TAC (``_label-<ref>_desc-preproc_tacs.tsv``)
        reference_file = scan.reference_files[labels[0]]
        ref_timing, ref_values, _ = read_tac_table(reference_file)
        if ref_timing.n_frames != timing.n_frames or ref_values.shape[1] != 1:
            raise PetbindError(f"{reference_file}: a reference TAC needs one column and the "
                               f"{timing.n_frames} frames of {path.name}", EX_DATAERR)
        values = values.assign(**{labels[0]: ref_values.iloc[:, 0].to_numpy()})
        missing = []
    if missing:
        shown = ", ".join(list(values.columns[:8])) + (", ..." if values.shape[1] > 8 else "")
        raise PetbindError(f"{path}: reference label {missing[0]!r} is not in seg-{scan.seg} "
                           f"({shown}); name the reference's labels with --reference-tac",
                           EX_DATAERR)
    values = values.iloc[first:]
    reference = values[labels]
    if reference.isna().any().any() or not (reference.to_numpy() > 0).any():
        raise PetbindError(f"{path}: the reference labels {', '.join(labels)} have n/a or no "
                           "positive value; choose other labels with --reference-tac",
                           EX_DATAERR)
    regions = [c for c in values.columns if c not in labels]
    left_out = {c: "not brain tissue" for c in regions if NOT_BRAIN.search(c)}
    left_out.update({c: "n/a values" for c in regions
                     if c not in left_out and values[c].isna().any()})
    return {"path": str(path), "time_columns": list(columns), "shift_s": shift,
            "first_frame": first, "first_frame_scale": scale,
            "reference_file": str(reference_file) if reference_file else None,
            "metadata": metadata.as_record(),
            "regions": [c for c in regions if c not in left_out], "left_out": left_out}


def check_tac_scan(scan: TacScan, settings: ParticipantConfig,
                   requested: list[str] | None) -> None:
    """Every table of the scan checked before any work; sets ``scan.record``, the plain values
    the graph's nodes and writers need."""
    from bids_app.bids import read_metadata

    tracer = settings.tracer(scan.tracer)
    radionuclide = read_metadata(scan.raw_sidecar).radionuclide
    if tracer.radionuclide != radionuclide:
        raise PetbindError(f"{scan.raw_sidecar}: TracerRadionuclide is {radionuclide} but "
                           f"{tracer.name} is labelled with {tracer.radionuclide}; fix the "
                           "sidecar", EX_DATAERR)
    labels = reference_labels(scan, tracer.reference_region, requested)
    weights, weighting = label_volumes(scan, labels)
    tables = [{**check_tac_table(scan, path, labels), "pvc": pvc}
              for pvc, path in sorted(scan.tables.items(), key=lambda kv: kv[0] or "")]
    scan.record = {
        "subject": scan.subject, "session": scan.session, "tracer": scan.tracer,
        "run": scan.run, "seg": scan.seg, "tables": tables,
        "reference": {"name": tracer.reference_region, "labels": labels, "weights": weights,
                      "weighting": weighting},
        "provenance": {"Sources": [str(p) for p in scan.tables.values()]
                       + [str(scan.raw_sidecar)], "SoftwareName": "petbind",
                       "Tracer": tracer.name, "PreprocessedBy": scan.folder.source,
                       "PreprocessedDerivatives": str(scan.folder.root)},
        "theta3_range_per_min": list(tracer.k2a_range_per_min())}


def find_image(folders: list[PetprepFolder], bids_dir: Path, pet: Path) -> dict | None:
    """PETPrep's preprocessed image of a raw PET scan (``<raw stem>_space-T1w_desc-preproc_pet``
    beside the raw file's place in the derivatives folder) with its head-motion estimates
    (``_desc-confounds_timeseries.tsv``, None if absent), as plain values; None if no folder
    has one."""
    folder_in_dataset = pet.parent.relative_to(bids_dir)
    stem = pet.name.split(".")[0].removesuffix("_pet")
    for folder in folders:
        where = folder.root / folder_in_dataset
        for extension in (".nii.gz", ".nii"):
            image = where / f"{stem}_space-T1w_desc-preproc_pet{extension}"
            if image.is_file():
                confounds = where / f"{stem}_desc-confounds_timeseries.tsv"
                return {"pet": str(image), "source": folder.source, "root": str(folder.root),
                        "confounds": str(confounds) if confounds.is_file() else None}
    return None


def check_image(preprocessed: dict, n_frames: int, sidecar: Path) -> None:
    """PETPrep's image of a scan checked as the raw PET is (4D, affine, finite frames) and
    against the raw sidecar's frame count; its motion table, where given, read and checked."""
    from bids_app.bids import check_affine, check_pet_data, load_data, load_header
    from workflows.imaging.preprocessed import MOTION_COLUMNS

    path = Path(preprocessed["pet"])
    img = load_header(path, "preprocessed PET image")
    frames = img.shape[3] if img.ndim == 4 else 1
    if frames != n_frames:
        raise PetbindError(f"{path}: {frames} frame(s) but the raw sidecar {sidecar} lists "
                           f"{n_frames}; give the PETPrep output of this scan", EX_DATAERR)
    check_affine(img, path, "preprocessed PET image")
    check_pet_data(load_data(img, path, "preprocessed PET image"), path)
    if preprocessed["confounds"]:
        confounds = Path(preprocessed["confounds"])
        table = read_text_tsv(confounds)
        missing = [c for c in MOTION_COLUMNS if c not in table.columns]
        if missing or len(table) != n_frames:
            raise PetbindError(f"{confounds}: needs the columns {', '.join(MOTION_COLUMNS)} and "
                               f"one row per frame ({n_frames}); has {len(table)} rows"
                               + (f", no {missing[0]}" if missing else "") + "; give PETPrep's "
                               "table or remove it", EX_DATAERR)
        numbers_or_na(table[list(MOTION_COLUMNS)], confounds)


def find_transforms(folders: list[PetprepFolder], bids_dir: Path, t1w: Path
                    ) -> tuple[dict | None, str | None]:
    """PETPrep's normalisation of a raw T1w: ``<sub>[_ses]_from-T1w_to-{T}_mode-image_xfm.h5``
    and ``from-{T}_to-T1w`` (T: :data:`names.TEMPLATE_SPACE`; ITK composites, as sMRIPrep
    writes them) in the T1w's folder of a derivatives folder, else in the subject's ``anat``.
    Returns them as :func:`workflows.anat.init_anat_wf` takes them, or None and why not (a
    note for the log; None, None where no folder has them)."""
    subject = t1w.name.split("_")[0]
    places = [t1w.parent.relative_to(bids_dir), Path(subject) / "anat"]
    forward = f"_from-T1w_to-{names.TEMPLATE_SPACE}_mode-image_xfm.h5"
    inverse = f"_from-{names.TEMPLATE_SPACE}_to-T1w_mode-image_xfm.h5"
    for folder in folders:
        for place in dict.fromkeys(places):
            found = sorted((folder.root / place).glob(f"{subject}*{forward}"))
            # the transform of this T1w: its name's entities start the raw T1w's
            mine = [f for f in found if t1w.name.startswith(f.name.removesuffix(forward))]
            if len(mine) > 1:
                return None, (f"{folder.root / place}: {len(mine)} PETPrep normalisations "
                              f"fit {t1w.name}; petbind normalises it itself")
            if mine:
                partner = mine[0].with_name(mine[0].name.removesuffix(forward) + inverse)
                if not partner.is_file():
                    return None, (f"{partner}: missing beside {mine[0].name}; petbind "
                                  f"normalises {t1w.name} itself")
                return {"t1w2mni": str(mine[0]), "mni2t1w": str(partner),
                        "source": folder.source}, None
    return None, None


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_transforms(transforms: dict) -> None:
    """PETPrep's normalisation files read as ITK transforms (HDF5 files that ANTs reads)."""
    for key in ("t1w2mni", "mni2t1w"):
        path = Path(transforms[key])
        try:
            with path.open("rb") as f:
                signature = f.read(len(HDF5_SIGNATURE))
        except OSError as err:
            raise PetbindError(f"{path}: cannot be read ({err.strerror}); make it readable or "
                               "remove it", EX_NOINPUT) from None
        if signature != HDF5_SIGNATURE:
            raise PetbindError(f"{path}: not an ITK transform (HDF5) file; give PETPrep's "
                               "transform or remove it", EX_DATAERR)


def tac_report_name(record: dict) -> str:
    """The report of a scan's PETPrep TAC fits (``record``: :func:`check_tac_scan`'s): named
    with its segmentation when the scan's image has the plain name's report."""
    entities = names.ScanEntities(record["subject"], record["session"], record["tracer"],
                                  record["run"])
    return names.report_name(entities, record["seg"] if record.get("with_image") else None)
