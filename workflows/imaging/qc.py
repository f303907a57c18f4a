"""Quality-control metrics of one scan, each against a threshold: where the anatomy, the
coregistration, the reference region, the fits or the head motion went wrong, a metric leaves
its range and the scan is flagged (the report, the console and the group level say so).

Anatomy is judged against the template brought by the normalisation's affine alone: a brain
mask that lost a lobe cannot pull an affine into the hole the way a nonlinear warp can.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from workflows.imaging.motion import motion_estimated
from workflows.imaging.resolution import smooth_fwhm

CORE_MM = 6.0      # the template brain this far inside its outline (affine misfit tolerated)
# The normalised T1w and the template are compared at gyral scale: a real head's sulci differ
# from the template's average ones at any alignment, a misalignment shows at this scale too
# (figures in docs/validation.md).
CORRELATION_FWHM_MM = 4.0


@dataclass(frozen=True)
class Threshold:
    lower: float | None
    upper: float | None
    description: str

    def flags(self, value: float) -> bool:
        return bool(not np.isfinite(value) or (self.lower is not None and value < self.lower)
                    or (self.upper is not None and value > self.upper))


THRESHOLDS: dict[str, Threshold] = {
    "brain_volume_ratio": Threshold(
        0.85, 1.15, "brain mask volume over the template brain's, scaled by the "
        "normalisation's affine"),
    "brain_missing_ml": Threshold(
        None, 15.0, f"template brain (affine; over {CORE_MM:g} mm inside its outline) outside "
        "the brain mask, mL: brain cut away"),
    "brain_excess_ml": Threshold(
        None, 60.0, f"brain mask over {CORE_MM:g} mm outside the template brain (affine), mL: "
        "skull, eyes or scalp kept"),
    "normalised_t1w_correlation": Threshold(
        0.8, None, f"correlation of the normalised T1w with the template in its brain, both "
        f"smoothed to {CORRELATION_FWHM_MM:g} mm FWHM"),
    "coregistration_offset_mm": Threshold(
        None, 5.0, "shift (mm) that would match the coregistered PET best to the T1w's brain"),
    "reference_volume_ml": Threshold(3.0, None, "reference region volume, mL"),
    "regions_on_bound_fraction": Threshold(
        None, 0.25, "share of the regional fits with an estimate on a bound"),
    "voxels_on_bound_fraction": Threshold(
        None, 0.1, "share of the voxels whose fit is on a bound (the largest over the "
        "voxelwise models): widen the theta3 range in --config-file"),
    "max_translation_mm": Threshold(None, 1.0, "largest head translation, mm (Magia: 1)"),
    "max_rotation_rad": Threshold(None, 0.05, "largest head rotation, rad (Magia: 0.05)"),
}


def _volume_ml(mask: np.ndarray, zooms) -> float:
    return float(mask.sum() * np.prod(zooms) / 1000.0)


def anatomy_metrics(brain_mask: str, t1w_mni: str, affine: str, template: str,
                    template_mask_on_t1w: str) -> dict[str, float]:
    """``template_mask_on_t1w``: the template's brain mask brought to the T1w grid by the
    normalisation's affine alone (``affine``: its ITK file, MNI points -> T1w points);
    ``t1w_mni``: the normalised T1w on the template's grid (``template``)."""
    import ants

    mask_img = nib.load(brain_mask)
    zooms = mask_img.header.get_zooms()[:3]
    mask = np.asarray(mask_img.dataobj) > 0.5
    prior = np.asarray(nib.load(template_mask_on_t1w).dataobj) > 0.5
    inside = ndimage.distance_transform_edt(prior, sampling=zooms) > CORE_MM
    outside = ndimage.distance_transform_edt(~prior, sampling=zooms) > CORE_MM
    matrix = np.asarray(ants.read_transform(affine).parameters[:9], dtype=float).reshape(3, 3)
    tpl = nib.load(template)
    tpl_data = np.asarray(tpl.dataobj, dtype=np.float64)
    tpl_brain = tpl_data > 5
    predicted = _volume_ml(tpl_brain, tpl.header.get_zooms()[:3]) * abs(np.linalg.det(matrix))
    voxel_mm = float(tpl.header.get_zooms()[0])         # the template grid is isotropic
    normalised = smooth_fwhm(np.asarray(nib.load(t1w_mni).dataobj), CORRELATION_FWHM_MM, voxel_mm)
    r = np.corrcoef(normalised[tpl_brain],
                    smooth_fwhm(tpl_data, CORRELATION_FWHM_MM, voxel_mm)[tpl_brain])[0, 1]
    return {"brain_volume_ratio": _volume_ml(mask, zooms) / predicted,
            "brain_missing_ml": _volume_ml(inside & ~mask, zooms),
            "brain_excess_ml": _volume_ml(mask & outside, zooms),
            "normalised_t1w_correlation": float(r) if np.isfinite(r) else 0.0}


def normalisation_metrics(brain_mask: str, t1w_mni: str, mni_affine: str, out_dir: str
                          ) -> dict[str, float]:
    """:func:`anatomy_metrics` of one normalisation (``mni_affine``: its affine part, see
    :class:`workflows.imaging.anat.Normalisation`), with the template on the grid the T1w was
    normalised on and the template's brain brought to the T1w by that affine."""
    import ants

    from workflows.imaging.anat import mni_reference_image

    template = mni_reference_image(float(nib.load(t1w_mni).header.get_zooms()[0]), out_dir)
    tpl = ants.image_read(template)
    prior = ants.apply_transforms(ants.image_read(brain_mask),
                                  tpl.new_image_like((tpl.numpy() > 5).astype("float32")),
                                  [mni_affine], whichtoinvert=[True])
    prior_path = str(Path(out_dir) / "template_brain_affine.nii.gz")
    ants.image_write(prior, prior_path)
    return anatomy_metrics(brain_mask, t1w_mni, mni_affine, template, prior_path)


def coregistration_offset_mm(petref_t1w: str, brain_mask: str, step_mm: float = 3.0,
                             reach_mm: float = 12.0) -> float:
    """How far (mm) the coregistered PET must be moved to match the T1w's brain best: along
    each axis, the shift (in steps of ``step_mm`` up to ``reach_mm``) at which the PET
    correlates best with the brain mask (both smoothed to 6 mm, on a grid of ``step_mm``);
    the length of the three shifts. A right coregistration needs none; one off by a
    centimetre needs about that."""
    pet_img = nib.load(petref_t1w)
    zooms = np.asarray(pet_img.header.get_zooms()[:3], dtype=float)
    factor = zooms / step_mm
    pet = ndimage.zoom(np.asarray(pet_img.dataobj, dtype=np.float64), factor, order=1)
    mask = ndimage.zoom(np.asarray(nib.load(brain_mask).dataobj, dtype=np.float64), factor,
                        order=1)
    pet, mask = smooth_fwhm(pet, 6.0, step_mm), smooth_fwhm(mask, 6.0, step_mm)
    steps = int(round(reach_mm / step_mm))
    best = []
    for axis in range(3):
        scores = [np.corrcoef(np.roll(pet, k, axis=axis).ravel(), mask.ravel())[0, 1]
                  for k in range(-steps, steps + 1)]
        best.append((int(np.nanargmax(scores)) - steps) * step_mm)
    return float(np.linalg.norm(best))


def kinetic_metrics(reference_mask: str, kinpar: str, fit_infos: list[str]
                    ) -> dict[str, float]:
    """Reference volume, and the shares of regional fits and of voxels on a bound: for the
    voxels, the largest over the voxelwise models (``fit_infos``, one JSON each)."""
    ref = nib.load(reference_mask)
    table = pd.read_csv(kinpar, sep="\t")
    on_bound = [v for info in fit_infos for k, v in json.loads(Path(info).read_text()).items()
                if k.startswith("FractionOfVoxelsOn")]
    return {"reference_volume_ml": _volume_ml(np.asarray(ref.dataobj) > 0.5,
                                              ref.header.get_zooms()[:3]),
            "regions_on_bound_fraction": float(table["on_bound"].astype(bool).mean())
            if len(table) else 0.0,
            "voxels_on_bound_fraction": float(max(on_bound)) if on_bound else 0.0}


def motion_metrics(motion_tsv: str) -> dict[str, float]:
    """The largest translation and rotation; none where the motion is not known (PET realigned
    elsewhere without its estimates)."""
    table = pd.read_csv(motion_tsv, sep="\t", na_values=["n/a"])
    if not motion_estimated(table):
        return {}
    return {"max_translation_mm": float(table[["trans_x", "trans_y", "trans_z"]].abs()
                                        .to_numpy().max()),
            "max_rotation_rad": float(table[["rot_x", "rot_y", "rot_z"]].abs().to_numpy().max())}


def thresholds_with(overrides: dict[str, list]) -> dict[str, Threshold]:
    """Every metric's range: :data:`THRESHOLDS`, with ``overrides`` (metric -> [lower, upper],
    None for no bound) in place of the defaults they name."""
    return {name: Threshold(*overrides[name], t.description) if name in overrides else t
            for name, t in THRESHOLDS.items()}


def qc_table(values: dict[str, float], thresholds: dict[str, Threshold] = THRESHOLDS
             ) -> pd.DataFrame:
    """One row per metric: value, its range and whether it is flagged."""
    rows = []
    for metric, value in values.items():
        t = thresholds[metric]
        rows.append({"metric": metric, "value": value, "lower": t.lower, "upper": t.upper,
                     "flagged": t.flags(value), "description": t.description})
    return pd.DataFrame(rows)


def flagged_messages(table: pd.DataFrame) -> list[str]:
    """A warning per flagged metric of a :func:`qc_table`."""
    out = []
    for _, row in table[table["flagged"].astype(bool)].iterrows():
        bounds = " to ".join(f"{b:g}" for b in (row["lower"], row["upper"])
                             if pd.notna(b))
        side = ("at least" if pd.notna(row["lower"]) and pd.isna(row["upper"]) else
                "at most" if pd.isna(row["lower"]) else "within")
        out.append(f"QC: {row['metric']} = {row['value']:.3g} ({row['description']}; expected "
                   f"{side} {bounds})")
    return out


def scan_qc(brain_mask: str, t1w_mni: str, mni_affine: str, petref_t1w: str,
            reference_mask: str, kinpar: str, fit_infos: list[str], motion_tsv: str,
            thresholds: dict[str, list], out_dir: str) -> str:
    """Node function: every metric of :data:`THRESHOLDS` for one scan, as ``qc.tsv`` (metric,
    value, lower, upper, flagged, description); ``mni_affine``: the normalisation's affine part
    (:class:`workflows.imaging.anat.Normalisation`); ``thresholds`` overrides ranges (metric ->
    [lower, upper], null for none)."""
    out = Path(out_dir)
    values = {**normalisation_metrics(brain_mask, t1w_mni, mni_affine, out_dir),
              "coregistration_offset_mm": coregistration_offset_mm(petref_t1w, brain_mask),
              **kinetic_metrics(reference_mask, kinpar, fit_infos),
              **motion_metrics(motion_tsv)}
    path = str(out / "qc.tsv")
    qc_table(values, thresholds_with(thresholds)).to_csv(path, sep="\t", index=False,
                                                        float_format="%.6g", na_rep="n/a")
    return path
