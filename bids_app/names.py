"""Every file name petbind writes or reads: BIDS entities in one order, suffixes and extensions.

Participant derivatives follow the BEP023 draft (PET preprocessing derivatives): e.g.
``sub-01_trc-carfentanil_space-MNI152NLin2009cAsym_desc-sm8_model-SRTM_meas-BPND_mimap.nii.gz``;
group outputs name their statistics as nilearn and fitlins do
(``trc-carfentanil_contrast-secureGtOthers_stat-t_statmap.nii.gz``). Writers, readers (the group
level finds its maps through :func:`find`), the simulator's truth and the tests all use these
functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_SPACE = "MNI152NLin2009cAsym"
ATLAS_SEG = "neuromorphometrics"        # the seg- label of the atlas's labels and their TACs

# The order entities take in a name: BIDS's order for the entities it has, then BEP023's
# pvc, model and meas, and the statistics entities of group maps.
ENTITY_ORDER = ("sub", "ses", "trc", "rec", "run", "from", "to", "mode", "space", "seg", "res",
                "label", "contrast", "desc", "pvc", "model", "meas", "stat")
_LABEL = re.compile(r"[A-Za-z0-9]+")


def filename(suffix: str, extension: str, **entities: str | None) -> str:
    """``<entity>-<label>_..._<suffix><extension>`` with the entities in :data:`ENTITY_ORDER`;
    entities given as None are left out (``from_`` stands for ``from``); an empty suffix is
    left out too. A label may be ``*`` (a glob pattern for readers)."""
    given = {k.rstrip("_"): v for k, v in entities.items() if v is not None}
    unknown = set(given) - set(ENTITY_ORDER)
    if unknown:
        raise ValueError(f"unknown BIDS entities {sorted(unknown)}")
    for key, value in given.items():
        if value != "*" and not _LABEL.fullmatch(str(value)):
            raise ValueError(f"{key}-{value}: a BIDS label has letters and digits only")
    parts = [f"{key}-{given[key]}" for key in ENTITY_ORDER if key in given]
    return "_".join(parts + ([suffix] if suffix else [])) + extension


def parse(name: str) -> tuple[dict[str, str], str, str]:
    """The entities, suffix and extension of a file name (the inverse of :func:`filename`)."""
    stem, dot, extension = name.partition(".")
    *pairs, suffix = stem.split("_")
    if "-" in suffix:                       # a name without suffix (trc-x_desc-settings.json)
        pairs, suffix = [*pairs, suffix], ""
    entities = {}
    for pair in pairs:
        key, sep, value = pair.partition("-")
        if not sep:
            raise ValueError(f"{name}: {pair!r} is not an entity")
        entities[key] = value
    return entities, suffix, dot + extension


def sidecar(path: Path) -> Path:
    """The JSON sidecar of a data file (same name, extension .json)."""
    return path.with_name(path.name.split(".")[0] + ".json")


@dataclass(frozen=True)
class ScanEntities:
    """The entities that name one PET scan's derivatives: sub, ses, trc, run."""

    subject: str
    session: str | None
    tracer: str
    run: str | None = None

    @property
    def entities(self) -> dict[str, str | None]:
        return {"sub": self.subject, "ses": self.session, "trc": self.tracer, "run": self.run}

    @property
    def prefix(self) -> str:
        """``sub-01[_ses-x]_trc-y[_run-1]``: the scan's name, the stem of its report."""
        return filename("", "", **self.entities)

    def name(self, suffix: str, extension: str, **entities: str | None) -> str:
        return filename(suffix, extension, **self.entities, **entities)


def subject_dir(root: Path, subject: str, session: str | None, datatype: str) -> Path:
    """``root/sub-<label>[/ses-<label>]/<datatype>``."""
    return Path(root) / f"sub-{subject}" / (f"ses-{session}" if session else "") / datatype


def scan_file(root: Path, scan: ScanEntities, suffix: str, extension: str,
              **entities: str | None) -> Path:
    """A scan's derivative: ``root/sub-*/[ses-*/]pet/<name>``."""
    return subject_dir(root, scan.subject, scan.session, "pet") / scan.name(suffix, extension,
                                                                           **entities)


def map_name(scan: ScanEntities, model_label: str, meas: str, space: str | None = None,
             desc: str | None = None, pvc: str | None = None) -> str:
    """A parametric map (BEP023 ``_mimap``)."""
    return scan.name("mimap", ".nii.gz", space=space, desc=desc, pvc=pvc, model=model_label,
                     meas=meas)


def smoothing_desc(fwhm_mm: float) -> str:
    """The desc- label of maps smoothed to ``fwhm_mm``: ``sm8`` for 8 mm (``sm6p5`` for 6.5)."""
    return "sm" + f"{fwhm_mm:g}".replace(".", "p")


def kinpar_name(scan: ScanEntities, model_label: str, pvc: str | None = None,
                seg: str | None = None) -> str:
    """Regional fits; ``seg`` names the segmentation where a scan has fits of two (PETPrep's
    TACs and petbind's atlas on PETPrep's image: the atlas's then carry it)."""
    return scan.name("kinpar", ".tsv", seg=seg, pvc=pvc, model=model_label)


def tacs_name(scan: ScanEntities, pvc: str | None = None) -> str:
    """Regional TACs: BEP023 names the segmentation they come from (``seg-``)."""
    return scan.name("tacs", ".tsv", seg=ATLAS_SEG, pvc=pvc)


def anat_name(subject: str, session: str | None, suffix: str, extension: str = ".nii.gz",
              **entities: str | None) -> str:
    return filename(suffix, extension, sub=subject, ses=session, **entities)


def report_name(scan: ScanEntities, seg: str | None = None) -> str:
    """A scan's report; ``seg``: the report of the regional fits of that segmentation's TACs
    when the scan has a report of its images too."""
    return f"{scan.prefix}{f'_seg-{seg}' if seg else ''}.html"


def group_name(tracer: str, suffix: str, extension: str, **entities: str | None) -> str:
    """A group output: ``trc-<tracer>_..._<suffix><extension>``."""
    return filename(suffix, extension, trc=tracer, **entities)


def find(root: Path, suffix: str, extension: str, **entities: str | None) -> list[Path]:
    """Files under ``root/sub-*`` whose name has exactly these entities (None: must be absent;
    ``*``: any label) besides sub, ses and run, in sorted order."""
    wanted = {k.rstrip("_"): v for k, v in entities.items()}
    found = []
    for path in sorted(Path(root).glob(f"sub-*/**/*_{suffix}{extension}")):
        try:
            have, have_suffix, have_ext = parse(path.name)
        except ValueError:
            continue
        if have_suffix != suffix or have_ext != extension:
            continue
        rest = {k: v for k, v in have.items() if k not in ("sub", "ses", "run")}
        if all(k in wanted for k in rest) and all(
                (rest.get(k) is None) if v is None else (v == "*" and k in rest) or
                rest.get(k) == v for k, v in wanted.items()):
            found.append(path)
    return found
