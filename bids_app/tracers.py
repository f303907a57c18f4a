"""Built-in tracer table: reference region and theta3 range of the basis-function method.

theta3 ranges are Magia's (1/min, 300 log-spaced bases). Magia fits decay-UNcorrected data, so its
theta3 includes the decay constant lambda; petbind fits decay-corrected data, whose theta3 is k2a
itself: :meth:`Tracer.k2a_range_per_min` subtracts lambda. Ranges for tracers Magia does not list
are set the same way (lower bound about k2_min / (1 + BPND_max) + lambda) and say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflows.kinetics.frames import decay_constant_per_s


@dataclass(frozen=True)
class Tracer:
    name: str
    radionuclide: str
    reference_region: str                    # key of the reference-region definitions
    theta3_range_per_min: tuple[float, float]  # Magia convention: includes lambda
    source: str

    def k2a_range_per_min(self) -> tuple[float, float]:
        """theta3 range for decay-corrected data (1/min): Magia's range minus lambda."""
        lam = decay_constant_per_s(self.radionuclide) * 60.0
        lo, hi = self.theta3_range_per_min
        return (max(lo - lam, 1e-3), hi - lam)


TRACERS: dict[str, Tracer] = {t.name: t for t in (
    Tracer("carfentanil", "C11", "occipital", (0.06, 0.6), "Magia"),
    Tracer("madam", "C11", "cerebellum", (0.045, 0.6), "Magia"),
    Tracer("raclopride", "C11", "cerebellum", (0.082, 0.6), "Magia"),
    Tracer("dasb", "C11", "cerebellum", (0.045, 0.6), "petbind, as MADAM (SERT, similar kinetics)"),
    Tracer("pib", "C11", "cerebellum", (0.05, 0.6), "petbind (k2 >= 0.05, BPND <= 2)"),
    Tracer("flumazenil", "C11", "pons", (0.06, 0.6), "petbind"),
    Tracer("fallypride", "F18", "cerebellum", (0.01, 0.5), "petbind (BPND up to about 40)"),
    Tracer("mc1", "C11", "cerebellum", (0.06, 0.6), "petbind (COX-2, BPND below 1)"),
)}

# Each reference region as the FreeSurfer (aseg / Desikan-Killiany) labels of segmentations made
# elsewhere, e.g. PETPrep's gtm: the labels whose TACs are combined, volume-weighted.
FREESURFER_REFERENCE: dict[str, tuple[str, ...]] = {
    "cerebellum": ("Left-Cerebellum-Cortex", "Right-Cerebellum-Cortex"),
    "occipital": tuple(f"ctx-{h}-{r}" for h in ("lh", "rh")
                       for r in ("lateraloccipital", "cuneus", "lingual", "pericalcarine")),
}


def canonical_tracer_name(name: str) -> str:
    """Lower-case, without isotope prefix or punctuation: "[11C]Carfentanil" -> "carfentanil"."""
    text = name.strip().lower()
    text = re.sub(r"^\[?\d+[a-z]{1,2}\]?[-_ ]?", "", text)
    return re.sub(r"[^a-z0-9]", "", text)


def lookup_tracer(name: str) -> Tracer:
    key = canonical_tracer_name(name)
    if key not in TRACERS:
        raise KeyError(f"unknown tracer {name!r}: give --theta3-range (and a reference region), "
                       f"or use one of {', '.join(sorted(TRACERS))}")
    return TRACERS[key]
