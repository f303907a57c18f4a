"""Voxelwise partial-volume correction of realigned frames, on a scan's GTM
(:class:`workflows.imaging.gtm.GTMSolution`): the regions' true mean activities per frame, their
labels on the fine grid, and each frame's resolution (the PSF and realignment's blur).

- RBV, region-based voxelwise correction (Thomas et al. 2011, Eur J Nucl Med Mol Imaging
  38:1104): paint each region's GTM value into its fine voxels (the synthetic image S), image
  it as the scanner does (blur, read at the PET voxel centres), and scale every voxel by S over
  that image: I_rbv = I S / (PSF * S). Contrast within a region is kept, spill-over between
  regions removed.
- MG, Mueller-Gaertner et al. 1992 (J Cereb Blood Flow Metab 12:571): grey matter is corrected
  voxel by voxel, everything else is taken uniform at its GTM value: I_gm = (I - PSF * S_other)
  / (PSF * GM), in voxels whose centre is grey matter and whose blurred grey-matter fraction is
  at least :data:`MG_MIN_GM_FRACTION`; other voxels keep their value.

A PET voxel's value is the blurred activity at its centre (:mod:`workflows.imaging.gtm`), so the
synthetic image is read at the same fine voxels the GTM reads its spread functions at.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from workflows.imaging.atlas import CSF_LABELS, WHITE_MATTER_LABELS
from workflows.imaging.gtm import UNLABELLED_BRAIN, GTMSolution

METHODS = ("rbv", "mg")
# MG divides by the blurred grey-matter fraction: below this the division amplifies noise
# more than it corrects (PETPVC leaves such voxels to the user; a quarter is a common cut)
MG_MIN_GM_FRACTION = 0.25
# RBV's denominator: below this fraction of the brain's mean imaged activity a voxel is
# background, where the ratio means nothing
RBV_MIN_FRACTION = 0.02


def _at_pet_centres(fine: NDArray, solution: GTMSolution) -> NDArray[np.float64]:
    """A fine-grid volume read at the PET voxel centres (fine voxel k i), flattened."""
    return fine[tuple(slice(None, None, k) for k in solution.factors)].ravel()


def _imaged(fine: NDArray, solution: GTMSolution, psf_fwhm_mm: float, frame: int
            ) -> NDArray[np.float64]:
    """A fine-grid volume as frame ``frame`` images it: blurred by the frame's resolution and
    read at the PET voxel centres (flattened). Outside the grid is as its edge (background)."""
    blurred = ndimage.gaussian_filter(fine, solution.frame_sigma_fine_vox(psf_fwhm_mm, frame),
                                      mode="nearest", truncate=4.0)
    return _at_pet_centres(blurred, solution)


def _region_lookup(solution: GTMSolution) -> NDArray[np.int64]:
    """Per fine voxel, its row of ``solution.corrected``; labels the PET grid never sees
    belong to label 0's row, as in the GTM's spread functions."""
    index = np.searchsorted(solution.ids, solution.labels_fine)
    index = np.clip(index, 0, solution.ids.size - 1)
    seen = solution.ids[index] == solution.labels_fine
    return np.where(seen, index, int(np.searchsorted(solution.ids, 0)))


def grey_matter_ids(ids: NDArray[np.integer]) -> NDArray[np.bool_]:
    """Which GTM regions are grey matter for MG: every atlas label but white matter and CSF,
    and the carved reference; not the background or the brain's unlabelled rim."""
    ids = np.asarray(ids)
    return ~np.isin(ids, [0, UNLABELLED_BRAIN, *WHITE_MATTER_LABELS, *CSF_LABELS])


def rbv_frames(data: NDArray, solution: GTMSolution, psf_fwhm_mm: float
               ) -> NDArray[np.float64]:
    """RBV-corrected frames (x, y, z, frames) of realigned ``data``."""
    flat = data.reshape(-1, data.shape[3])
    lookup = _region_lookup(solution)
    centre_rows = np.searchsorted(solution.ids, solution.labels_pet)
    out = np.empty(flat.shape)
    for f in range(flat.shape[1]):
        values = solution.corrected[:, f]
        imaged = _imaged(values[lookup].astype(np.float32), solution, psf_fwhm_mm, f)
        synthetic = values[centre_rows]
        brain = solution.labels_pet > 0
        floor = RBV_MIN_FRACTION * abs(float(imaged[brain].mean())) if brain.any() else 0.0
        usable = np.abs(imaged) > floor
        out[:, f] = np.where(usable, flat[:, f] * synthetic / np.where(usable, imaged, 1.0),
                             flat[:, f])
    return out.reshape(data.shape)


def mg_frames(data: NDArray, solution: GTMSolution, psf_fwhm_mm: float
              ) -> NDArray[np.float64]:
    """Mueller-Gaertner-corrected frames (x, y, z, frames) of realigned ``data``."""
    flat = data.reshape(-1, data.shape[3])
    lookup = _region_lookup(solution)
    grey_rows = grey_matter_ids(solution.ids)
    grey_fine = grey_rows[lookup].astype(np.float32)
    grey_centre = grey_rows[np.searchsorted(solution.ids, solution.labels_pet)]
    out = flat.astype(np.float64, copy=True)
    for f in range(flat.shape[1]):
        other = np.where(grey_rows, 0.0, solution.corrected[:, f])[lookup].astype(np.float32)
        spill = _imaged(other, solution, psf_fwhm_mm, f)
        fraction = _imaged(grey_fine, solution, psf_fwhm_mm, f)
        usable = grey_centre & (fraction >= MG_MIN_GM_FRACTION)
        out[usable, f] = (flat[usable, f] - spill[usable]) / fraction[usable]
    return out.reshape(data.shape)


def correct_frames(method: str, data: NDArray, solution: GTMSolution, psf_fwhm_mm: float
                   ) -> NDArray[np.float64]:
    """Frames corrected by ``method`` (:data:`METHODS`)."""
    if method == "rbv":
        return rbv_frames(data, solution, psf_fwhm_mm)
    if method == "mg":
        return mg_frames(data, solution, psf_fwhm_mm)
    raise ValueError(f"unknown voxelwise PVC method {method!r}: one of {', '.join(METHODS)}")
