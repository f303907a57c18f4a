"""Run settings of both levels in one object, validated once when it is made.

:class:`Config` has three sections: ``run`` (where and how: folders, selection, resources,
messages; none of it changes a result), ``participant`` and ``group`` (everything that changes a
result at that level). :meth:`ParticipantConfig.record` and :meth:`GroupConfig.record` are what
the outputs record; :meth:`Config.to_json` is the whole configuration, written into the work
directory so that a run can be reproduced.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bids_app import __version__
from bids_app.errors import EX_DATAERR, EX_NOINPUT, EX_USAGE, PetbindError
from bids_app.tracers import TRACERS, Tracer, canonical_tracer_name
from workflows.imaging.atlas import REFERENCE_ONLY, REGION_GROUPS, is_reference_region
from workflows.kinetics.frames import TimingError, normalise_radionuclide
from workflows.kinetics.models import MODELS, voxelwise_models

SKULL_STRIP_MODES = ("auto", "force", "skip")
PVC_METHODS = ("gtm", "rbv", "mg")   # --pvc-method: regional only, or voxelwise too
ROI_SOURCES = ("maps", "regional")   # group --roi-source: ROI means of the maps, or regional fits


@dataclass
class RunConfig:
    bids_dir: Path
    output_dir: Path
    work_dir: Path
    analysis_level: str = "participant"
    participant_labels: list[str] = field(default_factory=list)
    session_labels: list[str] = field(default_factory=list)
    tracers: list[str] = field(default_factory=list)
    bids_filters: dict = field(default_factory=dict)
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
    skip_bids_validation: bool = False
    stop_on_first_crash: bool = False
    plugin: str = "MultiProc"
    plugin_args: dict = field(default_factory=dict)
    verbosity: int = 0
    derivatives: list[Path] = field(default_factory=list)     # preprocessed elsewhere (PETPrep)
    reference_tac: list[str] | None = None   # with derivatives: the reference region's labels


@dataclass
class ParticipantConfig:
    models: list[str] = field(default_factory=lambda: ["srtm-bfm"])
    smoothing_fwhm_mm: float = 8.0
    pvc_psf_fwhm_mm: float | None = None   # GTM partial-volume correction of regional TACs
    pvc_method: str = "gtm"                # and with "rbv" or "mg" of the frames, voxelwise
    mni_voxel_mm: float = 2.0
    n_bases: int = 300
    seed: int = 0
    skull_strip_t1w: str = "auto"
    tracer_overrides: dict[str, dict] = field(default_factory=dict)
    qc_thresholds: dict[str, list] = field(default_factory=dict)   # metric -> [lower, upper]

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in voxelwise_models()]
        if unknown or not self.models:
            raise PetbindError(f"--model {' '.join(unknown)}: the participant level fits "
                               f"voxelwise models: {', '.join(voxelwise_models())}", EX_USAGE)
        self.models = list(dict.fromkeys(self.models))
        if not (math.isfinite(self.smoothing_fwhm_mm) and 0 <= self.smoothing_fwhm_mm <= 30):
            raise PetbindError(f"smoothing FWHM {self.smoothing_fwhm_mm:g} mm: give 0 (none) "
                               "to 30 mm", EX_USAGE)
        if self.pvc_psf_fwhm_mm is not None and not 0 < self.pvc_psf_fwhm_mm <= 20:
            raise PetbindError(f"--pvc-psf-fwhm {self.pvc_psf_fwhm_mm:g}: give the scanner's "
                               "resolution in mm (0 < FWHM <= 20)", EX_USAGE)
        if self.pvc_method not in PVC_METHODS:
            raise PetbindError(f"--pvc-method {self.pvc_method!r}: one of "
                               f"{', '.join(PVC_METHODS)}", EX_USAGE)
        if self.pvc_method != "gtm" and self.pvc_psf_fwhm_mm is None:
            raise PetbindError(f"--pvc-method {self.pvc_method}: give the scanner's resolution "
                               "with --pvc-psf-fwhm MM as well", EX_USAGE)
        if not 2 <= self.n_bases <= 5000:
            raise PetbindError(f"n_bases {self.n_bases}: give 2 to 5000 basis functions",
                               EX_USAGE)
        if self.skull_strip_t1w not in SKULL_STRIP_MODES:
            raise PetbindError(f"--skull-strip-t1w {self.skull_strip_t1w!r}: one of "
                               f"{', '.join(SKULL_STRIP_MODES)}", EX_USAGE)

    def tracer(self, name: str) -> Tracer:
        """The tracer's settings: the built-in table, overridden or extended by the config
        file."""
        key = canonical_tracer_name(name)
        base = TRACERS.get(key)
        extra = self.tracer_overrides.get(key, {})
        if base is None and not extra:
            raise PetbindError(
                f"unknown tracer {name!r}: add it to --config-file (\"tracers\": {{\"{key}\": "
                "{\"reference_region\": ..., \"theta3_range\": [lo, hi], \"radionuclide\": "
                "...}}) or use one of " + ", ".join(sorted(TRACERS)), EX_DATAERR)
        if base is None:
            missing = {"reference_region", "theta3_range", "radionuclide"} - set(extra)
            if missing:
                raise PetbindError(f"--config-file: tracer {key!r} needs "
                                   f"{', '.join(sorted(missing))}", EX_DATAERR)
            return Tracer(key, extra["radionuclide"], extra["reference_region"],
                          tuple(extra["theta3_range"]), "config file")
        return Tracer(key, extra.get("radionuclide", base.radionuclide),
                      extra.get("reference_region", base.reference_region),
                      tuple(extra.get("theta3_range", base.theta3_range_per_min)),
                      "config file" if extra else base.source)

    def record(self) -> dict[str, Any]:
        """The settings that change participant-level results."""
        from workflows.imaging.qc import thresholds_with

        return {"SoftwareVersion": __version__, "Models": self.models,
                "SmoothingFWHMmm": self.smoothing_fwhm_mm,
                "PartialVolumePSFFWHMmm": self.pvc_psf_fwhm_mm,
                "PartialVolumeMethod": self.pvc_method if self.pvc_psf_fwhm_mm else None,
                "MNIVoxelSizeMm": self.mni_voxel_mm, "NumberOfBases": self.n_bases,
                "Seed": self.seed, "SkullStripT1w": self.skull_strip_t1w,
                "TracerOverrides": self.tracer_overrides,
                "QCThresholds": {name: [t.lower, t.upper] for name, t in
                                 thresholds_with(self.qc_thresholds).items()}}


ANALYSES = ("groups", "occupancy", "retest")
# the two sessions of each two-session analysis by role: option --<role>-session, field
# <role>_session of GroupConfig
SESSION_ROLES = {"occupancy": ("baseline", "blocked"), "retest": ("test", "retest")}


@dataclass
class GroupConfig:
    group_column: str | None = None
    reference_group: str | None = None
    covariates: list[str] | None = None      # None: age and sex when present
    smoothing: str = "sm8"                   # desc- label of the maps the GLM uses, or "none"
    cluster_threshold: float = 0.001
    fdr_q: float = 0.025
    n_permutations: int = 1000
    voxel_fdr: bool = False
    tfce: bool = False
    roi_atlas: str = "neuromorphometrics"
    model: str = "srtm-bfm"
    seed: int = 0
    mni_voxel_mm: float = 2.0
    exclude_flagged: bool = False            # leave out scans whose QC flagged a metric
    session: str | None = None               # the ses- label compared (None: the only one)
    analysis: str = "groups"                 # one of ANALYSES
    baseline_session: str | None = None      # occupancy: the sessions compared
    blocked_session: str | None = None
    test_session: str | None = None          # retest: the sessions compared
    retest_session: str | None = None
    exposure_column: str | None = None       # occupancy: sessions.tsv column of the dose
    fit_omax: bool = False
    min_baseline_bpnd: float = 0.3           # occupancy: regions and voxels below are left out
    pvc: str | None = None                   # the maps corrected voxel by voxel: rbv, mg or any
    roi_source: str = "maps"                 # ROI BPND: means of the maps, or regional fits

    def __post_init__(self) -> None:
        if not 0 < self.cluster_threshold < 1:
            raise PetbindError(f"--cluster-threshold {self.cluster_threshold:g}: a voxel p "
                               "between 0 and 1 (e.g. 0.001)", EX_USAGE)
        if not 0 < self.fdr_q < 1:
            raise PetbindError(f"--fdr-q {self.fdr_q:g}: an FDR level between 0 and 1 "
                               "(e.g. 0.025)", EX_USAGE)
        if not 1 <= self.n_permutations <= 1_000_000:
            raise PetbindError(f"--n-permutations {self.n_permutations}: give 1 to 1000000 "
                               "(5000 for publication)", EX_USAGE)
        if self.session is not None and not re.fullmatch(r"[A-Za-z0-9]+", self.session):
            raise PetbindError(f"--session-label {self.session!r}: a ses- label has letters and "
                               "digits only", EX_USAGE)
        self._check_analysis()
        if self.pvc not in (None, "any", *PVC_METHODS[1:]):
            raise PetbindError(f"--pvc {self.pvc!r}: one of {', '.join(PVC_METHODS[1:])} (or "
                               "--pvc alone: the corrected maps there are)", EX_USAGE)
        if self.roi_source not in ROI_SOURCES:
            raise PetbindError(f"--roi-source {self.roi_source!r}: one of "
                               f"{', '.join(ROI_SOURCES)}", EX_USAGE)
        if self.pvc and self.analysis != "groups":
            raise PetbindError("--pvc is an option of --analysis groups", EX_USAGE)
        if self.model not in voxelwise_models():
            raise PetbindError(f"--model {self.model}: the group level analyses the maps of "
                               f"one voxelwise model: {', '.join(voxelwise_models())}", EX_USAGE)

    def _check_analysis(self) -> None:
        sessions = {analysis: {f"--{role}-session": getattr(self, f"{role}_session")
                               for role in roles} for analysis, roles in SESSION_ROLES.items()}
        if self.analysis not in ANALYSES:
            raise PetbindError(f"--analysis {self.analysis}: one of {', '.join(ANALYSES)}",
                               EX_USAGE)
        foreign = [option for analysis, options in sessions.items() if analysis != self.analysis
                   for option, value in options.items() if value is not None]
        if self.analysis != "occupancy":
            foreign += [o for o, v in (("--exposure-column", self.exposure_column),
                                       ("--fit-omax", self.fit_omax)) if v]
        if foreign:
            owner = next((a for a, options in sessions.items() if foreign[0] in options),
                         "occupancy")
            raise PetbindError(f"{foreign[0]} is an option of --analysis {owner}", EX_USAGE)
        if self.analysis == "groups":
            return
        if self.session is not None:
            raise PetbindError(f"--analysis {self.analysis} compares two sessions: give "
                               f"{' and '.join(sessions[self.analysis])}, not --session-label",
                               EX_USAGE)
        for option, value in sessions[self.analysis].items():
            if value is None:
                raise PetbindError(f"--analysis {self.analysis} needs {option}", EX_USAGE)
            if not re.fullmatch(r"[A-Za-z0-9]+", value):
                raise PetbindError(f"{option} {value!r}: a ses- label has letters and digits "
                                   "only", EX_USAGE)
        if len(set(sessions[self.analysis].values())) < 2:
            raise PetbindError(f"{' and '.join(sessions[self.analysis])} must differ", EX_USAGE)
        if self.exposure_column is not None and not re.fullmatch(r"[A-Za-z0-9_]+",
                                                                 self.exposure_column):
            raise PetbindError(f"--exposure-column {self.exposure_column!r}: letters, digits "
                               "and _ only", EX_USAGE)
        if not (math.isfinite(self.min_baseline_bpnd) and self.min_baseline_bpnd > 0):
            raise PetbindError(f"--min-baseline-bpnd {self.min_baseline_bpnd:g}: a positive "
                               "BPND", EX_USAGE)

    @property
    def model_label(self) -> str:
        return MODELS[self.model].label

    @property
    def smoothing_desc(self) -> str | None:
        return None if self.smoothing == "none" else self.smoothing

    def record(self) -> dict[str, Any]:
        """The options of a group run (the settings file adds what they resolved to)."""
        return {"Model": self.model_label, "Smoothing": self.smoothing_desc or "none",
                "VoxelFDR": self.voxel_fdr, "TFCE": self.tfce, "ROIAtlas": self.roi_atlas,
                "ClusterFormingThresholdP": self.cluster_threshold, "FDRq": self.fdr_q,
                "NumberOfPermutations": self.n_permutations, "Seed": self.seed,
                "ExcludeQCFlagged": self.exclude_flagged, "Analysis": self.analysis,
                "PartialVolumeCorrection": self.pvc, "ROISource": self.roi_source,
                **({"BaselineSession": self.baseline_session,
                    "BlockedSession": self.blocked_session,
                    "ExposureColumn": self.exposure_column, "FitOmax": self.fit_omax,
                    "MinBaselineBPND": self.min_baseline_bpnd}
                   if self.analysis == "occupancy" else {}),
                **({"TestSession": self.test_session, "RetestSession": self.retest_session}
                   if self.analysis == "retest" else {})}


@dataclass
class Config:
    run: RunConfig
    participant: ParticipantConfig = field(default_factory=ParticipantConfig)
    group: GroupConfig = field(default_factory=GroupConfig)

    def to_json(self) -> str:
        record = asdict(self)
        return json.dumps(record, indent=2, default=str)     # paths as text


CONFIG_KEYS = ("tracers", "smoothing_fwhm", "n_bases", "qc_thresholds")
TRACER_KEYS = ("reference_region", "theta3_range", "radionuclide")


def read_config_file(path: Path) -> dict:
    """--config-file: JSON with optional keys "tracers" (name -> reference_region,
    theta3_range [1/min, Magia convention], radionuclide), "smoothing_fwhm", "n_bases". Every
    key and type is checked here, before any work."""
    if not path.is_file():
        raise PetbindError(f"{path}: no such config file", EX_NOINPUT)
    try:
        content = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise PetbindError(f"{path}: not a text (UTF-8 JSON) file", EX_DATAERR) from None
    except json.JSONDecodeError as err:
        raise PetbindError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})",
                           EX_DATAERR) from None
    if not isinstance(content, dict):
        raise PetbindError(f"{path}: must be a JSON object", EX_DATAERR)
    unknown = set(content) - set(CONFIG_KEYS)
    if unknown:
        raise PetbindError(f"{path}: unknown keys {', '.join(sorted(unknown))}; allowed: "
                           f"{', '.join(CONFIG_KEYS)}", EX_DATAERR)
    for key in ("smoothing_fwhm", "n_bases"):
        if key in content and not _is_number(content[key]):
            raise PetbindError(f"{path}: {key} must be a number, not {content[key]!r}",
                               EX_DATAERR)
    if "n_bases" in content and content["n_bases"] != int(content["n_bases"]):
        raise PetbindError(f"{path}: n_bases must be a whole number", EX_DATAERR)
    tracers = content.get("tracers", {})
    if not isinstance(tracers, dict):
        raise PetbindError(f"{path}: \"tracers\" must be an object of tracer name -> settings",
                           EX_DATAERR)
    content["tracers"] = {canonical_tracer_name(name): _tracer_entry(path, name, entry)
                          for name, entry in tracers.items()}
    content["qc_thresholds"] = _qc_entries(path, content.get("qc_thresholds", {}))
    return content


def _qc_entries(path: Path, entries) -> dict[str, list]:
    """"qc_thresholds": {"metric": [lower, upper]} with null for no bound."""
    from workflows.imaging.qc import THRESHOLDS

    if not isinstance(entries, dict):
        raise PetbindError(f"{path}: \"qc_thresholds\" must be an object of metric -> "
                           "[lower, upper]", EX_DATAERR)
    for name, bounds in entries.items():
        if name not in THRESHOLDS:
            raise PetbindError(f"{path}: no QC metric {name!r}; metrics: "
                               f"{', '.join(THRESHOLDS)}", EX_DATAERR)
        if not (isinstance(bounds, list) and len(bounds) == 2 and
                all(b is None or _is_number(b) for b in bounds)):
            raise PetbindError(f"{path}: qc_thresholds {name!r} must be [lower, upper] "
                               f"(numbers or null), not {bounds!r}", EX_DATAERR)
    return dict(entries)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _tracer_entry(path: Path, name: str, entry: Any) -> dict:
    where = f"{path}: tracer {name!r}"
    if not isinstance(entry, dict):
        raise PetbindError(f"{where} must be an object with {', '.join(TRACER_KEYS)}",
                           EX_DATAERR)
    if not canonical_tracer_name(name):
        raise PetbindError(f"{where}: the name needs letters or digits", EX_DATAERR)
    unknown = set(entry) - set(TRACER_KEYS)
    if unknown:
        raise PetbindError(f"{where}: unknown keys {', '.join(sorted(unknown))}; allowed: "
                           f"{', '.join(TRACER_KEYS)}", EX_DATAERR)
    out = dict(entry)
    if "reference_region" in entry:
        region = entry["reference_region"]
        if not isinstance(region, str) or not is_reference_region(region):
            raise PetbindError(f"{where}: reference_region {region!r} is not a region petbind "
                               f"knows ({', '.join([*REGION_GROUPS, *REFERENCE_ONLY])})",
                               EX_DATAERR)
    if "theta3_range" in entry:
        lohi = entry["theta3_range"]
        if not (isinstance(lohi, list) and len(lohi) == 2 and all(map(_is_number, lohi))
                and 0 < lohi[0] < lohi[1]):
            raise PetbindError(f"{where}: theta3_range must be [LO, HI] in 1/min with "
                               f"0 < LO < HI, not {lohi!r}", EX_DATAERR)
    if "radionuclide" in entry:
        try:
            out["radionuclide"] = normalise_radionuclide(str(entry["radionuclide"]))
        except TimingError as err:
            raise PetbindError(f"{where}: {err}", EX_DATAERR) from None
    return out
