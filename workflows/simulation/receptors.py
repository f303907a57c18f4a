"""Receptor truth: regional BPND patterns per tracer, and per-subject maps in MNI space.

Patterns (BPND relative to the tracer's reference region, which has BPND 0 by definition):

- [11C]carfentanil (mu-opioid receptor, occipital reference): regional means of the group map of
  39 healthy volunteers (Turtonen et al. 2021, via Hansen et al. 2022 Nat Neurosci), minus the
  occipital floor of about 0.25. Regions the map does not list (other cortex, white matter,
  brainstem, pallidum) are petbind's plausible values, marked "assumed" below.
- [11C]MADAM (serotonin transporter, cerebellar reference): the relative pattern of the group map
  of Fazio et al. 2016 (n = 10), referenced to cerebellar grey matter and scaled so that thalamus
  BPND = 2.0, the order reported for [11C]MADAM by Lundberg et al. 2005 (J Nucl Med 46:1505).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from workflows.imaging.atlas import (BRAINSTEM_LABELS, CSF_LABELS, REGION_GROUPS,
                                     WHITE_MATTER_LABELS, canonical_region, is_cortical_label,
                                     region_labels)
from workflows.imaging.resolution import smooth_fwhm


@dataclass(frozen=True)
class ReceptorPattern:
    tracer: str
    reference_region: str
    regions: dict[str, float]
    other_cortex: float
    other_subcortical: float
    white_matter: float
    brainstem: float


PATTERNS: dict[str, ReceptorPattern] = {
    "carfentanil": ReceptorPattern(
        "carfentanil", "occipital",
        {"ventralstriatum": 2.28, "putamen": 1.61, "thalamus": 1.53, "acc": 1.47,
         "amygdala": 1.35, "insula": 1.26, "dorsalcaudate": 1.25, "mcc": 1.15, "ofc": 1.07,
         "temporalpole": 0.91, "pcc": 0.73, "cerebellargm": 0.60, "hippocampus": 0.58,
         "pallidum": 1.0,          # assumed
         "occipital": 0.0},
        other_cortex=0.9, other_subcortical=0.8, white_matter=0.1, brainstem=1.0),  # assumed
    "madam": ReceptorPattern(
        "madam", "cerebellargm",
        {"thalamus": 2.00, "putamen": 2.23, "ventralstriatum": 2.05, "dorsalcaudate": 1.43,
         "amygdala": 1.39, "insula": 0.64, "hippocampus": 0.60, "acc": 0.57, "mcc": 0.53,
         "pcc": 0.51, "occipital": 0.37, "ofc": 0.35, "temporalpole": 0.28,
         "pallidum": 1.2,          # assumed
         "cerebellargm": 0.0},
        other_cortex=0.4, other_subcortical=1.0, white_matter=0.15, brainstem=2.5),  # assumed
}

# Relative delivery R1 = K1 / K1_ref by tissue class (cortex and the reference region 1.0).
TISSUE_R1 = {"cortex": 1.0, "subcortical": 1.15, "white_matter": 0.6, "brainstem": 0.9,
             "csf": 0.05}
TISSUE_CLASSES = tuple(TISSUE_R1)


def tissue_class_of_labels(labels: NDArray[np.integer]) -> NDArray[np.int8]:
    """Index into TISSUE_CLASSES per voxel; -1 outside the brain."""
    out = np.full(labels.shape, -1, dtype=np.int8)
    brain = labels > 0
    out[brain] = TISSUE_CLASSES.index("subcortical")
    out[np.isin(labels, [i for i in np.unique(labels) if is_cortical_label(int(i))])] = 0
    out[np.isin(labels, region_labels("cerebellargm"))] = 0
    out[np.isin(labels, WHITE_MATTER_LABELS)] = TISSUE_CLASSES.index("white_matter")
    out[np.isin(labels, BRAINSTEM_LABELS)] = TISSUE_CLASSES.index("brainstem")
    out[np.isin(labels, CSF_LABELS)] = TISSUE_CLASSES.index("csf")
    return out


@dataclass
class SubjectReceptors:
    """Per-subject regional BPND: pattern x subject factor x regional factors x effects."""

    regional: dict[str, float]
    defaults: dict[str, float] = field(default_factory=dict)


def subject_regional_bpnd(pattern: ReceptorPattern, rng: np.random.Generator,
                          effects: dict[str, float] | None = None, in_effect_group: bool = False,
                          age_years: float | None = None, age_effect_per_decade: float = 0.0,
                          female: bool | None = None, sex_effect: float = 0.0,
                          cv_subject: float = 0.08, cv_region: float = 0.08,
                          occupancy: float = 0.0) -> SubjectReceptors:
    """Regional BPND of one subject: a subject-wide lognormal factor (CV ``cv_subject``) times a
    regional one (CV ``cv_region``; together about 11 %), group effects (``effects``: region ->
    fraction lower, applied when ``in_effect_group``), age (fraction per decade from 35 years) and
    sex (fraction higher in women) effects, and receptor occupancy (a blocked session)."""
    def lognormal(cv: float) -> float:
        sigma = np.sqrt(np.log1p(cv**2))
        return float(np.exp(rng.normal(-sigma**2 / 2, sigma)))

    scale = lognormal(cv_subject)
    if age_years is not None:
        scale *= 1.0 + age_effect_per_decade * (age_years - 35.0) / 10.0
    if female:
        scale *= 1.0 + sex_effect
    scale *= 1.0 - occupancy
    regional = {}
    for region, value in pattern.regions.items():
        v = value * scale * lognormal(cv_region)
        if in_effect_group and effects and region in effects:
            v *= 1.0 - effects[region]
        regional[region] = 0.0 if region == pattern.reference_region else v
    defaults = {k: getattr(pattern, k) * scale for k in
                ("other_cortex", "other_subcortical", "white_matter", "brainstem")}
    return SubjectReceptors(regional, defaults)


def with_session_variation(receptors: SubjectReceptors, cv: float, rng: np.random.Generator
                           ) -> SubjectReceptors:
    """One session's measurement of a subject's receptors: every region's BPND times an
    independent normal factor of mean 1 and SD ``cv`` (the within-subject CV between sessions
    of a test-retest study); the reference region stays 0."""
    regional = {region: value * (1.0 + cv * rng.standard_normal()) if value else value
                for region, value in receptors.regional.items()}
    defaults = {k: v * (1.0 + cv * rng.standard_normal()) for k, v in receptors.defaults.items()}
    return SubjectReceptors(regional, defaults)


def bpnd_map(labels: NDArray[np.integer], receptors: SubjectReceptors, voxel_mm: float,
             rng: np.random.Generator, within_cv: float = 0.05,
             smooth_fwhm_mm: float = 12.0) -> NDArray[np.float64]:
    """BPND on an atlas label grid: regional values, defaults by tissue class, and smooth
    within-region variation (a Gaussian random field, FWHM ``smooth_fwhm_mm``, relative SD
    ``within_cv``). The reference region stays exactly 0; CSF and background are 0."""
    classes = tissue_class_of_labels(labels)
    out = np.zeros(labels.shape)
    out[classes == 0] = receptors.defaults["other_cortex"]
    out[classes == TISSUE_CLASSES.index("subcortical")] = receptors.defaults["other_subcortical"]
    out[classes == TISSUE_CLASSES.index("white_matter")] = receptors.defaults["white_matter"]
    out[classes == TISSUE_CLASSES.index("brainstem")] = receptors.defaults["brainstem"]
    reference = np.zeros(labels.shape, dtype=bool)
    for region, value in receptors.regional.items():
        mask = np.isin(labels, region_labels(region))
        out[mask] = value
        if value == 0.0:
            reference |= mask
    field_ = smooth_fwhm(rng.standard_normal(labels.shape), smooth_fwhm_mm, voxel_mm)
    field_ /= field_.std() or 1.0
    out *= 1.0 + within_cv * field_
    out[reference | (classes == TISSUE_CLASSES.index("csf")) | (labels == 0)] = 0.0
    return np.maximum(out, 0.0)


def parse_effects(items: list[str]) -> dict[str, float]:
    """``["hippocampus=0.15", ...]`` -> {"hippocampus": 0.15}; names checked against the known
    regions."""
    effects = {}
    for item in items:
        name, sep, value = item.partition("=")
        region = canonical_region(name)
        if not sep or region not in REGION_GROUPS:
            raise ValueError(f"--effect {item!r}: use REGION=FRACTION with a region among "
                             f"{', '.join(REGION_GROUPS)}")
        fraction = float(value)
        if not 0 <= fraction < 1:
            raise ValueError(f"--effect {item!r}: FRACTION must be in [0, 1)")
        effects[region] = fraction
    return effects
