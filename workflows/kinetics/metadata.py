"""What a PET scan's sidecar says about its frames, validated once: frame timing, radionuclide
and decay-correction state. The participant graph passes :meth:`PETMetadata.as_record` (plain
JSON values) to its nodes, which rebuild the object instead of reading the sidecar again.

Times in seconds from the BIDS TimeZero, as in the sidecar.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .frames import (FrameTiming, TimingError, decay_constant_per_s, decay_correct,
                     normalise_radionuclide)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _numbers(sidecar: Mapping[str, Any], key: str) -> list[float]:
    """A list of numbers (or one number) from the sidecar; a clear error for anything else."""
    if key not in sidecar:
        raise TimingError(f"sidecar has no {key}; add it (a list of seconds, one per frame)")
    value = sidecar[key]
    items = value if isinstance(value, list) else [value]
    bad = [v for v in items if not _is_number(v)]
    if bad:
        raise TimingError(f"{key} must be a list of numbers (seconds), found {bad[0]!r} "
                          f"({type(bad[0]).__name__}); write plain JSON numbers")
    return [float(v) for v in items]


def _boolean(sidecar: Mapping[str, Any], key: str) -> bool:
    value = sidecar[key]
    if not isinstance(value, bool):
        raise TimingError(f"{key} must be true or false (a JSON boolean), not {value!r}; "
                          "write it without quotes")
    return value


@dataclass(frozen=True)
class PETMetadata:
    """Frame timing, the radionuclide (canonical key, e.g. "C11") and the decay-correction
    state of a PET image: ``decay_corrected`` to ``decay_correction_time_s`` (seconds from
    TimeZero), or not decay-corrected."""

    timing: FrameTiming
    radionuclide: str
    decay_corrected: bool
    decay_correction_time_s: float = 0.0
    tracer_name: str | None = None

    @classmethod
    def from_sidecar(cls, sidecar: Mapping[str, Any], n_frames: int | None = None
                     ) -> "PETMetadata":
        """Read and check a BIDS PET sidecar (FrameTimesStart and FrameDuration in seconds,
        TracerRadionuclide, ImageDecayCorrected, ImageDecayCorrectionTime): types, then values;
        ``n_frames``, the image's 4th dimension, when given."""
        timing = FrameTiming(np.array(_numbers(sidecar, "FrameTimesStart")),
                             np.array(_numbers(sidecar, "FrameDuration")))
        if n_frames is not None and timing.n_frames != n_frames:
            raise TimingError(
                f"the image has {n_frames} frames but the sidecar lists {timing.n_frames}; "
                "FrameTimesStart/FrameDuration must have one entry per frame")
        nuclide = sidecar.get("TracerRadionuclide")
        if nuclide is None:
            raise TimingError("sidecar has no TracerRadionuclide (e.g. \"C11\"); add it")
        if not isinstance(nuclide, str):
            raise TimingError(f"TracerRadionuclide must be a string such as \"C11\", not "
                              f"{nuclide!r}")
        try:
            nuclide = normalise_radionuclide(nuclide)
        except TimingError as err:
            raise TimingError(f"TracerRadionuclide: {err}") from None
        if "ImageDecayCorrected" not in sidecar:
            raise TimingError("sidecar has no ImageDecayCorrected; add true or false")
        corrected = _boolean(sidecar, "ImageDecayCorrected")
        time_s = 0.0
        if corrected:
            if "ImageDecayCorrectionTime" not in sidecar:
                raise TimingError("sidecar says ImageDecayCorrected but has no "
                                  "ImageDecayCorrectionTime (seconds from TimeZero); add it")
            value = sidecar["ImageDecayCorrectionTime"]
            if not _is_number(value) or not math.isfinite(value):
                raise TimingError(f"ImageDecayCorrectionTime must be a number of seconds from "
                                  f"TimeZero, not {value!r}")
            time_s = float(value)
        name = sidecar.get("TracerName")
        return cls(timing, nuclide, corrected, time_s, name if isinstance(name, str) else None)

    def to_decay_corrected(self, values: ArrayLike, reference_time_s: float = 0.0
                           ) -> NDArray[np.float64]:
        """Frame values (last axis = frames) decay-corrected to ``reference_time_s``."""
        values = np.asarray(values, dtype=np.float64)
        if not self.decay_corrected:
            return decay_correct(values, self.timing, self.radionuclide, reference_time_s)
        if self.decay_correction_time_s == reference_time_s:
            return values
        lam = decay_constant_per_s(self.radionuclide)
        return values * math.exp(lam * (self.decay_correction_time_s - reference_time_s))

    def as_record(self) -> dict[str, Any]:
        """Plain JSON values (for nipype node inputs and provenance)."""
        return {"FrameTimesStart": self.timing.start_s.tolist(),
                "FrameDuration": self.timing.duration_s.tolist(),
                "TracerRadionuclide": self.radionuclide,
                "ImageDecayCorrected": self.decay_corrected,
                "ImageDecayCorrectionTime": self.decay_correction_time_s,
                "TracerName": self.tracer_name}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "PETMetadata":
        return cls(FrameTiming(np.asarray(record["FrameTimesStart"], dtype=np.float64),
                               np.asarray(record["FrameDuration"], dtype=np.float64)),
                   record["TracerRadionuclide"], bool(record["ImageDecayCorrected"]),
                   float(record["ImageDecayCorrectionTime"]), record.get("TracerName"))
