"""Voxelwise kinetic models in PET space: every voxel of the brain mask fitted at once by a
model of the family that has a voxelwise fit (:mod:`workflows.kinetics.models`)."""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np

from workflows.kinetics.checks import absurd, magnitude_scale
from workflows.kinetics.metadata import PETMetadata
from workflows.kinetics.model import PARAMETERS, Fit, KineticModel, ModelSettings
from workflows.kinetics.models import get_model
from workflows.kinetics.models.srtm import median_k2prime
from workflows.kinetics.weights import frame_weights


class EmptyReferenceError(ValueError):
    """The reference TAC is zero in every frame."""


@dataclass
class VoxelwiseFit:
    fit: Fit
    brain: np.ndarray            # boolean mask of fitted voxels
    weights: np.ndarray
    reference_tac: np.ndarray
    excluded: np.ndarray         # boolean mask of brain voxels left out (non-finite or absurd)
    order: str = "C"             # the voxel order of the fit's values (:func:`voxel_tacs`)

    def volume(self, parameter: str) -> np.ndarray:
        """A parameter as a float32 image: 0 outside the brain mask, NaN where a voxel was
        excluded."""
        return self._image(self.fit[parameter])

    def maps(self, parameters: tuple[str, ...]) -> list[tuple[str, np.ndarray, dict]]:
        """(meas label, float32 volume, sidecar description) of each of ``parameters``, then
        of the standard error, in percent of the estimate (BEP023's ``-se``), of those the
        model gives standard errors for."""
        return [(p, self.volume(p), map_description(p)) for p in parameters] + [
            (se_measure(p), self._image(self.fit.percent_standard_error(p)),
             se_map_description(p)) for p in parameters if p in self.fit.standard_errors]

    def _image(self, values: np.ndarray) -> np.ndarray:
        out = scatter(self.brain, values, self.order)
        out[self.excluded] = np.nan
        return out


def memory_order(data: np.ndarray) -> str:
    """"F" for an image whose frames are stored column-major (as NIfTI stores them), else
    "C"."""
    return "F" if data[..., 0].flags.f_contiguous else "C"


def scatter(mask: np.ndarray, values: np.ndarray, order: str, dtype=np.float32) -> np.ndarray:
    """An image of ``mask``'s shape holding ``values`` at the mask's voxels taken in ``order``
    (the inverse of :func:`voxel_tacs`), 0 elsewhere."""
    out = np.zeros(mask.shape, dtype=dtype, order=order)
    out.reshape(-1, order=order)[mask.ravel(order=order)] = values
    return out


def voxel_tacs(data: np.ndarray, mask: np.ndarray, reuse: bool = False) -> np.ndarray:
    """The (voxels, frames) TACs of ``mask``'s voxels in a 4D image, voxels in the order the
    image stores them (:func:`memory_order`: numpy's ``data[mask]`` for a row-major image),
    gathered frame by frame by a boolean mask: one sequential pass over each frame, faster
    than an index in another order (docs/validation.md: speed). Column-major, in the image's
    dtype. With ``reuse`` and a column-major ``data``, the TACs overwrite the start of
    ``data``'s memory (frame f's voxels go where frames up to f were, read already): no second
    image-sized array."""
    order = memory_order(data)
    selected = mask.ravel(order=order)
    n_frames, n = data.shape[3], int(np.count_nonzero(selected))
    if reuse and data.flags.f_contiguous:
        flat = data.reshape(-1, order="F")
        out = flat[:n_frames * n].reshape(n_frames, n)
    else:
        out = np.empty((n_frames, n), dtype=data.dtype)
    for frame in range(n_frames):
        out[frame] = data[..., frame].ravel(order=order)[selected]   # copied, then stored
    return out.T


def usable_voxels(tacs: np.ndarray) -> np.ndarray:
    """The voxel TACs (rows) without a non-finite or absurd value (:func:`absurd`), checked
    frame by frame (no image-sized temporaries)."""
    scale = magnitude_scale(tacs)
    bad = np.zeros(len(tacs), dtype=bool)
    for frame in np.asarray(tacs).T:
        bad |= absurd(frame, scale)
    return ~bad


def fit_image(data: np.ndarray, metadata: PETMetadata, reference: np.ndarray,
              brain: np.ndarray, model: KineticModel, settings: ModelSettings,
              weights: str = "counts", reuse_data: bool = False) -> VoxelwiseFit:
    """Fit every voxel of ``brain`` in a 4D array (x, y, z, frames) whose state ``metadata``
    describes; ``reference`` is a boolean mask. Voxels with a non-finite or absurd value are
    left out of the fit, of the reference TAC and of the mean TAC the counts-based weights come
    from, so that one broken voxel changes nothing else. With ``reuse_data`` the voxel TACs
    take ``data``'s memory (:func:`voxel_tacs`): its values are lost."""
    ref_voxels = voxel_tacs(data, reference).astype(np.float64)
    ref_voxels = ref_voxels[usable_voxels(ref_voxels)]
    if not len(ref_voxels):
        raise EmptyReferenceError("every voxel of the reference region has NaN or absurd "
                                  "values")
    ref_tac = metadata.to_decay_corrected(ref_voxels.mean(axis=0))
    if not np.any(ref_tac > 0):
        raise EmptyReferenceError("the reference TAC is zero in every frame")
    raw = voxel_tacs(data, brain, reuse=reuse_data)
    usable = usable_voxels(raw)
    if not usable.any():
        raise ValueError("every voxel to fit has NaN or absurd values")
    # decay correction frame by frame in the image's precision; the models fit in float64
    # chunk by chunk, so the whole image is never held in float64
    factors = metadata.to_decay_corrected(np.ones(metadata.timing.n_frames))
    tacs = raw if usable.all() else raw[usable]         # raw is this function's own copy
    tacs *= factors.astype(tacs.dtype)
    w = frame_weights(weights, metadata.timing, tacs.mean(axis=0, dtype=np.float64),
                      metadata.radionuclide)
    fit = model.fit_voxelwise(metadata.timing, ref_tac, tacs, w, settings)
    order = memory_order(data)
    fitted_brain = scatter(brain, usable, order, dtype=bool)
    excluded = brain & ~fitted_brain
    return VoxelwiseFit(fit, fitted_brain, w, ref_tac, excluded, order)


def fit_info(fitted: VoxelwiseFit, model: KineticModel, settings: ModelSettings,
             weights: str) -> dict:
    """The fit's settings and QC, for the maps' sidecars."""
    return {**model.describe(settings), "Weights": weights,
            "FrameWeights": [round(float(w), 6) for w in fitted.weights],
            "NumberOfVoxels": int(fitted.brain.sum()),
            "NumberOfVoxelsExcluded": int(fitted.excluded.sum()),
            **model.describe_fit(fitted.fit)}


def save_map(volume: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """A 3D map as NIfTI-1; a ``.gz`` name is gzip-compressed by zlib with run-length matching
    only (Z_RLE): float maps hold few repeats beyond runs of zeros, so it compresses as well as
    level 1, faster (docs/validation.md: speed). One zlib call releases the GIL: maps
    written on threads compress side by side. No time stamp: the same bytes for the same map."""
    img = nib.Nifti1Image(volume, affine)
    img.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        deflate = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 8, zlib.Z_RLE)
        path.write_bytes(deflate.compress(img.to_bytes()) + deflate.flush())
    else:
        nib.save(img, path)


def map_description(parameter: str) -> dict:
    units, description = PARAMETERS[parameter]
    return {"Description": description, "Units": units}


def se_measure(parameter: str) -> str:
    """The meas- label of a parameter's standard-error map: ``BPNDse`` (BEP023 writes the
    standard error as ``BPND-se``; a label cannot hold the hyphen)."""
    return f"{parameter}se"


def map_work_name(label: str, meas: str) -> str:
    """The work file of a model's map with this meas- label (:func:`fit_maps`)."""
    return f"{label}_{meas}.nii.gz"


def se_map_description(parameter: str) -> dict:
    return {"Description": f"standard error of {parameter} in percent of its estimate "
                           "(asymptotic, from the fit's covariance); NaN where the estimate is 0",
            "Units": "%"}


def k2prime_from_kinpar(kinpar: str) -> tuple[float, int]:
    """k2' (1/min) as the median k2 / R1 of the regional SRTM fits in a ``_kinpar.tsv`` that
    are not on a bound, and the number of regions it came from."""
    import pandas as pd

    table = pd.read_csv(kinpar, sep="\t")
    try:
        return median_k2prime(table["k2"] / table["R1"], table["on_bound"].astype(bool))
    except ValueError as err:
        raise ValueError(f"{kinpar}: {err}") from None


def fit_maps(pet_hmc: str, metadata: dict, reference_mask: str, brain_mask: str, model: str,
             settings: dict, out_dir: str, kinpar: str | None = None
             ) -> tuple[list[str], list[str], str]:
    """Node function: the model's maps in PET space (work files, in ``model.maps`` order), the
    standard-error maps of those the model gives standard errors for (percent, in that order)
    and a JSON of fit settings and QC. ``metadata``: :meth:`PETMetadata.as_record`;
    ``settings``: the fields of :class:`ModelSettings`; ``kinpar``: the regional SRTM fits,
    where k2' comes from for a model that fixes it when ``settings`` has none."""
    kinetic = get_model(model)
    options = ModelSettings(**{**settings, "theta3_range_per_min": tuple(
        settings["theta3_range_per_min"]) if settings.get("theta3_range_per_min") else None})
    source = {}
    if "k2prime_per_min" in kinetic.needs and options.k2prime_per_min is None:
        k2prime, n_regions = k2prime_from_kinpar(kinpar)
        options = replace(options, k2prime_per_min=k2prime)
        source = {"K2PrimeSource": f"median k2/R1 of the regional SRTM fits ({n_regions} "
                                   "regions off their bounds)"}
    img = nib.load(pet_hmc)
    data = np.asarray(img.dataobj, dtype=np.float32)
    reference = np.asarray(nib.load(reference_mask).dataobj) > 0.5
    brain = np.asarray(nib.load(brain_mask).dataobj) > 0.5
    fitted = fit_image(data, PETMetadata.from_record(metadata), reference, brain, kinetic,
                       options, reuse_data=True)
    paths = []
    for meas, volume, _ in fitted.maps(kinetic.maps):
        paths.append(str(Path(out_dir) / map_work_name(kinetic.label, meas)))
        save_map(volume, img.affine, Path(paths[-1]))
    info_path = Path(out_dir) / "fit_info.json"
    info_path.write_text(json.dumps({**fit_info(fitted, kinetic, options, "counts"), **source}))
    n_maps = len(kinetic.maps)
    return paths[:n_maps], paths[n_maps:], str(info_path)


def settings_record(settings: ModelSettings) -> dict:
    """:class:`ModelSettings` as plain values (a node input)."""
    record = asdict(settings)
    if record["theta3_range_per_min"] is not None:
        record["theta3_range_per_min"] = list(record["theta3_range_per_min"])
    return record
