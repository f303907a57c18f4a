"""Run settings: one object carries them from the command line to the workflows and is written
into the work directory so that a run can be reproduced."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bids_app.errors import EX_DATAERR, EX_NOINPUT, PetbindError
from bids_app.tracers import TRACERS, Tracer, canonical_tracer_name


@dataclass
class Settings:
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
    smoothing_fwhm_mm: float = 8.0
    pvc_psf_fwhm_mm: float | None = None   # GTM partial-volume correction of regional TACs
    mni_voxel_mm: float = 2.0
    n_bases: int = 300
    seed: int = 0
    skull_strip_t1w: str = "auto"
    verbosity: int = 0
    tracer_overrides: dict[str, dict] = field(default_factory=dict)

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

    def to_json(self) -> str:
        record = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        return json.dumps(record, indent=2)


def read_config_file(path: Path) -> dict:
    """--config-file: JSON with optional keys "tracers" (name -> reference_region,
    theta3_range [1/min, Magia convention], radionuclide), "smoothing_fwhm", "n_bases"."""
    if not path.is_file():
        raise PetbindError(f"{path}: no such config file", EX_NOINPUT)
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PetbindError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})",
                           EX_DATAERR) from None
    if not isinstance(content, dict):
        raise PetbindError(f"{path}: must be a JSON object", EX_DATAERR)
    unknown = set(content) - {"tracers", "smoothing_fwhm", "n_bases"}
    if unknown:
        raise PetbindError(f"{path}: unknown keys {', '.join(sorted(unknown))}; allowed: "
                           "tracers, smoothing_fwhm, n_bases", EX_DATAERR)
    return content
