"""Frame timing, radionuclides and radioactive decay.

All times in this module are in **seconds** relative to BIDS ``TimeZero`` unless a name says
``_min``. Activity concentrations are in whatever unit the image has (usually Bq/mL); decay
factors are dimensionless.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Physical half-lives in seconds (NNDC / Laboratoire National Henri Becquerel tables).
HALF_LIFE_S: dict[str, float] = {
    "C11": 20.364 * 60.0,
    "F18": 109.771 * 60.0,
    "O15": 122.24,
    "N13": 9.965 * 60.0,
    "Ga68": 67.71 * 60.0,
    "Rb82": 75.45,
    "Cu64": 12.701 * 3600.0,
    "Zr89": 78.41 * 3600.0,
}


class TimingError(ValueError):
    """Frame timing or decay information that cannot be used as it is."""


def normalise_radionuclide(name: str) -> str:
    """Return the canonical key of :data:`HALF_LIFE_S` for spellings like ``C11``, ``11C``,
    ``[11C]``, ``C-11`` or ``carbon-11``."""
    text = str(name).strip().lower().replace("[", "").replace("]", "").replace("-", "")
    text = text.replace("^", "").replace(" ", "")
    words = {"carbon": "c", "fluorine": "f", "oxygen": "o", "nitrogen": "n", "gallium": "ga",
             "rubidium": "rb", "copper": "cu", "zirconium": "zr"}
    for word, symbol in words.items():
        text = text.replace(word, symbol)
    match = re.fullmatch(r"([a-z]{1,2})(\d+)|(\d+)([a-z]{1,2})", text)
    if match:
        symbol = match.group(1) or match.group(4)
        mass = match.group(2) or match.group(3)
        key = symbol.capitalize() + mass
        if key in HALF_LIFE_S:
            return key
    known = ", ".join(sorted(HALF_LIFE_S))
    raise TimingError(f"unknown radionuclide {name!r}; known: {known}")


def decay_constant_per_s(radionuclide: str) -> float:
    """Decay constant lambda = ln 2 / half-life, in 1/s."""
    return math.log(2.0) / HALF_LIFE_S[normalise_radionuclide(radionuclide)]


@dataclass(frozen=True)
class FrameTiming:
    """Start and duration of each frame, in seconds from TimeZero (BIDS FrameTimesStart and
    FrameDuration). Validated on construction: finite, durations > 0, frames in order and not
    overlapping (gaps are allowed)."""

    start_s: NDArray[np.float64]
    duration_s: NDArray[np.float64]

    def __post_init__(self) -> None:
        start = np.asarray(self.start_s, dtype=np.float64).ravel()
        duration = np.asarray(self.duration_s, dtype=np.float64).ravel()
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "duration_s", duration)
        if start.size == 0:
            raise TimingError("no frames: FrameTimesStart is empty")
        if start.size != duration.size:
            raise TimingError(
                f"FrameTimesStart has {start.size} values but FrameDuration has {duration.size}; "
                "give one start and one duration per frame")
        if not (np.all(np.isfinite(start)) and np.all(np.isfinite(duration))):
            raise TimingError("FrameTimesStart/FrameDuration contain NaN or infinite values")
        if np.any(duration <= 0):
            bad = int(np.flatnonzero(duration <= 0)[0])
            raise TimingError(
                f"frame {bad} has duration {duration[bad]:g} s; every FrameDuration must be > 0")
        if start[0] < 0:
            raise TimingError(f"first frame starts at {start[0]:g} s, before TimeZero")
        if np.any(np.diff(start) <= 0):
            bad = int(np.flatnonzero(np.diff(start) <= 0)[0]) + 1
            raise TimingError(
                f"frames go backwards: frame {bad} starts at {start[bad]:g} s, not after frame "
                f"{bad - 1} at {start[bad - 1]:g} s; FrameTimesStart must increase")
        overlap = start[1:] < start[:-1] + duration[:-1] - 1e-3
        if np.any(overlap):
            bad = int(np.flatnonzero(overlap)[0]) + 1
            raise TimingError(
                f"frames overlap: frame {bad} starts at {start[bad]:g} s before frame {bad - 1} "
                f"ends at {start[bad - 1] + duration[bad - 1]:g} s; check FrameDuration")
        total = start[-1] + duration[-1]
        if total > 24 * 3600:
            raise TimingError(
                f"the scan ends {total:g} s after TimeZero (over 24 h): frame times look like "
                "milliseconds; BIDS wants FrameTimesStart and FrameDuration in seconds")

    @classmethod
    def from_minutes(cls, start_min: ArrayLike, duration_min: ArrayLike) -> "FrameTiming":
        """Build from starts and durations given in minutes."""
        return cls(np.asarray(start_min, float) * 60.0, np.asarray(duration_min, float) * 60.0)

    @classmethod
    def from_protocol(cls, blocks: list[tuple[int, float]], start_s: float = 0.0) -> "FrameTiming":
        """Contiguous frames from blocks of (count, duration in seconds), e.g.
        ``[(3, 60), (4, 180), (9, 360)]`` for the seed carfentanil protocol."""
        durations = np.concatenate([np.full(n, d, dtype=np.float64) for n, d in blocks])
        starts = start_s + np.concatenate([[0.0], np.cumsum(durations)[:-1]])
        return cls(starts, durations)

    @property
    def n_frames(self) -> int:
        return int(self.start_s.size)

    @property
    def end_s(self) -> NDArray[np.float64]:
        return self.start_s + self.duration_s

    @property
    def mid_s(self) -> NDArray[np.float64]:
        return self.start_s + 0.5 * self.duration_s

    @property
    def start_min(self) -> NDArray[np.float64]:
        return self.start_s / 60.0

    @property
    def end_min(self) -> NDArray[np.float64]:
        return self.end_s / 60.0

    @property
    def mid_min(self) -> NDArray[np.float64]:
        return self.mid_s / 60.0

    @property
    def duration_min(self) -> NDArray[np.float64]:
        return self.duration_s / 60.0


def decay_factors(timing: FrameTiming, radionuclide: str,
                  reference_time_s: float = 0.0) -> NDArray[np.float64]:
    """Per-frame factors that turn frame-mean decay-UNcorrected activity into activity
    decay-corrected to ``reference_time_s`` (BIDS ImageDecayCorrectionTime, seconds from
    TimeZero).

    For a frame [a, a + d]: factor = lambda d exp(lambda (a - t_ref)) / (1 - exp(-lambda d)),
    the exact correction for activity that is constant (before decay) over the frame.
    """
    lam = decay_constant_per_s(radionuclide)
    d = timing.duration_s
    return lam * d * np.exp(lam * (timing.start_s - reference_time_s)) / -np.expm1(-lam * d)


def decay_correct(values: ArrayLike, timing: FrameTiming, radionuclide: str,
                  reference_time_s: float = 0.0) -> NDArray[np.float64]:
    """Decay-correct frame values (last axis = frames) to ``reference_time_s``."""
    return np.asarray(values, dtype=np.float64) * decay_factors(timing, radionuclide,
                                                                reference_time_s)


def decay_uncorrect(values: ArrayLike, timing: FrameTiming, radionuclide: str,
                    reference_time_s: float = 0.0) -> NDArray[np.float64]:
    """Undo decay correction to ``reference_time_s`` (last axis = frames)."""
    return np.asarray(values, dtype=np.float64) / decay_factors(timing, radionuclide,
                                                                reference_time_s)


# Frame protocols of the seed study, as blocks of (count, duration in seconds).
SEED_PROTOCOLS: dict[str, list[tuple[int, float]]] = {
    "carfentanil": [(3, 60.0), (4, 180.0), (9, 360.0)],   # 69 min
    "madam": [(3, 60.0), (4, 180.0), (10, 360.0)],        # 75 min
}
