"""Partial-volume correction of regional TACs by the geometric transfer matrix (GTM; Rousset,
Ma & Evans 1998, J Nucl Med 39:904), as PETSurfer's mri_gtmpvc and PETPVC's "GTM" do.

The scanner images each region's activity blurred by its point-spread function (PSF): the mean
observed in region i is t_i = sum_j G_ij a_j, where a_j is region j's true mean activity and
G_ij the mean over region i of region j's blurred indicator (its regional spread function).
Solving G a = t per frame gives TACs free of spill-over between regions, provided the activity
is uniform within each region and the PSF is known.

The regions are the Neuromorphometrics labels warped to a grid k times finer than the PET grid
(aligned so that PET voxel i is fine voxel k i), the T1w brain mask's voxels outside them (the
unlabelled rim of the brain) and everything else (label 0). A PET voxel's value is its
PSF-blurred activity at the voxel centre (the PSF is the image of a point source, measured on
reconstructed images), so the spread functions are blurred on the fine grid and read at the PET
voxel centres. Motion correction resamples the frames (cubic B-spline), which blurs them a
little further, by how far each frame's sample points fall between voxels
(:func:`workflows.imaging.resolution.realignment_variance_mm2`): each frame's GTM takes the
resolution of that frame after realignment, not the scanner's alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from workflows.imaging.resolution import (FWHM_TO_SIGMA, fine_factors,
                                          mean_resampling_variance_mm2,
                                          realignment_variance_mm2)


def realigned_fwhm_mm(psf_fwhm_mm: float, pet_voxel_mm: tuple[float, float, float]
                      ) -> tuple[float, float, float]:
    """Per axis, the FWHM (mm) of frames imaged with a Gaussian PSF and then resampled by cubic
    B-spline at sub-voxel shifts spread evenly over a voxel (motion correction at an unknown
    pose): :func:`mean_resampling_variance_mm2` added."""
    return tuple(math.sqrt(psf_fwhm_mm ** 2
                           + mean_resampling_variance_mm2(v, psf_fwhm_mm) / FWHM_TO_SIGMA ** 2)
                 for v in pet_voxel_mm)


def region_spread_functions(labels_fine: NDArray[np.integer], factors: tuple[int, int, int],
                            sigma_fine_vox: tuple[float, float, float], ids: NDArray[np.integer]
                            ) -> NDArray[np.float64]:
    """(len(ids), n_pet_voxels): each label's indicator on the fine grid, blurred by a Gaussian
    PSF (SD in fine voxels per axis) and read at the PET voxel centres. Label 0 (all outside the
    labelled regions) gets one minus the others."""
    step = tuple(slice(None, None, k) for k in factors)
    pet_shape = labels_fine[step].shape
    reach = [int(math.ceil(4 * s)) for s in sigma_fine_vox]
    out = np.zeros((len(ids), int(np.prod(pet_shape))))
    objects = ndimage.find_objects(labels_fine.astype(np.int32))
    for row, label in enumerate(ids):
        if label == 0 or label > len(objects) or objects[label - 1] is None:
            continue
        box = objects[label - 1]
        # a box around the label, widened by 4 SD and aligned to PET voxel centres
        lo = [max(0, (b.start - r) // k * k) for b, r, k in zip(box, reach, factors)]
        hi = [min(n, b.stop + r) for b, r, n in zip(box, reach, labels_fine.shape)]
        crop = tuple(slice(a, b) for a, b in zip(lo, hi))
        blurred = ndimage.gaussian_filter((labels_fine[crop] == label).astype(np.float32),
                                          sigma_fine_vox, mode="constant", truncate=4.0)
        sampled = blurred[tuple(slice(None, None, k) for k in factors)]
        target = np.zeros(pet_shape)
        start = [a // k for a, k in zip(lo, factors)]
        target[tuple(slice(s, s + n) for s, n in zip(start, sampled.shape))] = sampled
        out[row] = target.ravel()
    if 0 in ids:
        background = int(np.flatnonzero(ids == 0)[0])
        out[background] = np.clip(1.0 - out.sum(axis=0), 0.0, None)
    return out


def geometric_transfer_matrix(labels_fine: NDArray[np.integer], factors: tuple[int, int, int],
                              fine_voxel_mm: tuple[float, float, float],
                              fwhm_mm: float | tuple[float, float, float]
                              ) -> tuple[NDArray[np.int64], NDArray[np.float64],
                                         NDArray[np.int64]]:
    """The regions seen on the PET grid (``ids``, label 0 included), their GTM (rows: observed
    region, columns: true region) and their PET voxel labels (flattened). ``fwhm_mm``: the
    Gaussian resolution of the images, one value or one per axis."""
    labels_pet = labels_fine[tuple(slice(None, None, k) for k in factors)].ravel()
    ids, index, counts = np.unique(labels_pet, return_inverse=True, return_counts=True)
    fwhm = np.broadcast_to(np.asarray(fwhm_mm, dtype=float), (3,))
    sigma = tuple(float(f) * FWHM_TO_SIGMA / v for f, v in zip(fwhm, fine_voxel_mm))
    rsf = region_spread_functions(labels_fine, factors, sigma, ids)
    gtm = np.stack([np.bincount(index, weights=r, minlength=ids.size) for r in rsf], axis=1)
    return ids, gtm / counts[:, None], labels_pet


def gtm_correct(observed_means: NDArray[np.float64], gtm: NDArray[np.float64]
                ) -> NDArray[np.float64]:
    """True regional means (regions x frames) from observed ones: G a = t solved per frame."""
    return np.linalg.solve(gtm, observed_means)


def gtm_correct_frames(observed_means: NDArray[np.float64], gtm_scanner: NDArray[np.float64],
                       gtm_realigned: NDArray[np.float64], blur_fractions: NDArray[np.float64]
                       ) -> NDArray[np.float64]:
    """True regional means (regions x frames) from the observed means of frames whose
    resolutions differ: frame f's GTM lies between ``gtm_scanner`` (the PSF alone) and
    ``gtm_realigned`` (the PSF and resampling's mean variance,
    :func:`realigned_fwhm_mm`) at ``blur_fractions[f]``, the frame's interpolation variance over
    that mean (0 where the frame was not resampled; the matrix is close to linear in the added
    variance, a fraction of a voxel's variance)."""
    out = np.empty_like(observed_means, dtype=np.float64)
    for f, w in enumerate(np.asarray(blur_fractions, dtype=np.float64)):
        gtm = gtm_scanner + w * (gtm_realigned - gtm_scanner)
        out[:, f] = gtm_correct(observed_means[:, f], gtm)
    return out


UNLABELLED_BRAIN = 10000   # GTM region of brain-mask voxels without an atlas label


def label_unlabelled_brain(labels: NDArray, brain: NDArray[np.bool_]) -> NDArray[np.int64]:
    """The labels with the brain mask's voxels that carry no atlas label (label 0) as a region
    of their own, :data:`UNLABELLED_BRAIN`: the atlas stops 1-4 mm inside the brain's outline
    (cortex partial-volumed with CSF), and that rim holds activity that the rest of label 0,
    outside the head's brain, does not. One region for both would have no uniform activity."""
    out = np.asarray(labels, dtype=np.int64).copy()
    out[(out == 0) & np.asarray(brain, dtype=bool)] = UNLABELLED_BRAIN
    return out


def atlas_on_fine_pet_grid(petref: str, mni2t1w: str, pet2t1w: str, out_dir: str,
                           brain_mask: str | None = None) -> str:
    """The atlas labels on a grid finer than the PET grid by :func:`fine_factors` (same origin
    and orientation: PET voxel i is fine voxel k i), in one nearest-neighbour interpolation
    through MNI -> T1w -> PET; with the T1w ``brain_mask``, its unlabelled voxels as
    :data:`UNLABELLED_BRAIN` (:func:`label_unlabelled_brain`)."""
    import ants

    from workflows.imaging.atlas import atlas_path
    from workflows.imaging.chains import mni_to_pet

    pet = ants.image_read(petref)
    factors = fine_factors(tuple(pet.spacing))
    fine = ants.resample_image(pet, tuple(float(s) / k for s, k in zip(pet.spacing, factors)),
                               use_voxels=False, interp_type=1)
    to_pet, invert = mni_to_pet(mni2t1w, pet2t1w)
    labels = ants.apply_transforms(fine, ants.image_read(str(atlas_path())), to_pet,
                                   interpolator="nearestNeighbor", whichtoinvert=invert)
    if brain_mask:
        brain = ants.apply_transforms(fine, ants.image_read(brain_mask), [pet2t1w],
                                      interpolator="linear", whichtoinvert=[True])
        labels = labels.new_image_like(
            label_unlabelled_brain(labels.numpy().round(), brain.numpy() > 0.5)
            .astype(np.float32))
    path = str(Path(out_dir) / "atlas_space-pet_res-fine.nii.gz")
    ants.image_write(labels, path)
    return path


# how far the GTM's reference region reaches past the trimmed reference mask, inside the
# reference's atlas labels (cohort figures in docs/validation.md)
REFERENCE_GROWTH_MM = 4.0


def grown_reference(mask: NDArray[np.bool_], voxel_mm: tuple[float, float, float]
                    ) -> NDArray[np.bool_]:
    """The trimmed reference mask grown by :data:`REFERENCE_GROWTH_MM` (face-connected steps
    of the PET voxel, at least one). At PET resolution the mask is a grey-matter ribbon a
    voxel or two thick; where the atlas lies 1-2 mm off, part of it sits on white matter or
    CSF, which the GTM takes for reference tissue: the reference comes out low and every BPND
    high. Grown, and then cut to the reference's labels (:func:`carve_reference`), the region
    averages over that misplacement."""
    steps = max(1, int(round(REFERENCE_GROWTH_MM / min(voxel_mm))))
    return ndimage.binary_dilation(mask, iterations=steps)


def carve_reference(labels_fine: NDArray[np.integer], reference_mask_pet: NDArray[np.bool_],
                    factors: tuple[int, int, int], reference_labels: list[int]
                    ) -> tuple[NDArray[np.int64], int]:
    """The fine labels with the reference region as a region of its own: the fine voxels of the
    reference region's atlas labels that lie in a PET voxel of ``reference_mask_pet`` (the
    trimmed mask of :mod:`workflows.refregion`; fine voxel j lies in PET voxel floor(j/k + 1/2)).
    Returns the labels and the new region's id (one above the largest label)."""
    labels = np.asarray(labels_fine, dtype=np.int64).copy()
    index = [np.clip(np.floor(np.arange(n) / k + 0.5).astype(int), 0, m - 1)
             for n, k, m in zip(labels.shape, factors, reference_mask_pet.shape)]
    inside = np.asarray(reference_mask_pet, dtype=bool)[np.ix_(*index)]
    new_id = int(labels.max()) + 1
    reference = np.isin(labels, reference_labels)
    labels[inside & reference] = new_id
    # a reference label left without a PET voxel cannot be a GTM region: its fine voxels join
    # the reference instead of the background
    on_pet = np.unique(labels[tuple(slice(None, None, k) for k in factors)])
    orphans = [r for r in reference_labels if r not in on_pet]
    labels[np.isin(labels, orphans)] = new_id
    return labels, new_id


@dataclass
class GTMSolution:
    """A scan's GTM: its regions on the fine grid and their corrected means per frame, and
    what the voxelwise corrections (:mod:`workflows.imaging.voxel_pvc`) need beside them."""

    labels_fine: NDArray[np.int64]        # the regions on the fine grid (reference carved)
    factors: tuple[int, int, int]         # fine voxels per PET voxel, per axis
    fine_voxel_mm: tuple[float, float, float]
    ids: NDArray[np.int64]                # the regions seen on the PET grid, label 0 included
    labels_pet: NDArray[np.int64]         # the region of each PET voxel (flattened)
    corrected: NDArray[np.float64]        # (regions, frames): true mean activity
    variance_mm2: NDArray[np.float64]     # (frames, 3): realignment's added variance
    reference_id: int

    def frame_sigma_fine_vox(self, psf_fwhm_mm: float, frame: int) -> tuple[float, ...]:
        """Per axis, the SD (fine voxels) of frame ``frame``'s resolution: the PSF and the
        blur its realignment added."""
        return tuple(math.sqrt((psf_fwhm_mm * FWHM_TO_SIGMA) ** 2 + var) / v
                     for var, v in zip(self.variance_mm2[frame], self.fine_voxel_mm))


def extract_tacs_gtm(pet_hmc: str, metadata: dict, motion_tsv: str, atlas_fine: str,
                     reference_mask: str, psf_fwhm_mm: float, reference_name: str, out_dir: str,
                     voxelwise_method: str | None = None
                     ) -> tuple[str, list[float], str | None]:
    """GTM-corrected TACs of every atlas label, each region group and the reference region, in
    the layout of :func:`workflows.imaging.tacs.extract_tacs` (``metadata``:
    :meth:`PETMetadata.as_record`). ``psf_fwhm_mm`` is the scanner's
    resolution; motion correction (``motion_tsv``, the poses it undid) resampled each frame by
    cubic B-spline, which blurred it by :func:`realignment_variance_mm2` over the brain,
    so each frame's GTM takes that frame's resolution (:func:`gtm_correct_frames`); a frame
    whose pose is not known (n/a) takes the mean blur of one resampling. Returns the
    TSV path, the resolution (FWHM, mm, per axis) averaged over the frames, and with
    ``voxelwise_method`` ("rbv" or "mg") the frames corrected voxel by voxel
    (:mod:`workflows.imaging.voxel_pvc`), else None.

    The reference is a GTM region of its own (:func:`carve_reference`): the part of its atlas
    labels inside ``reference_mask`` (restricted and trimmed to voxels of reference tissue)
    grown by :func:`grown_reference`. The whole atlas region would not do: where normalisation
    places its labels over neighbouring cortex with receptors, the GTM attributes that
    cortex's activity to the reference, which comes out high, and every BPND low
    (docs/validation.md). The reference's atlas-label columns then hold the rest of those
    labels."""
    import nibabel as nib

    from workflows.imaging.tacs import tacs_table
    from workflows.kinetics.metadata import PETMetadata

    pet_img = nib.load(pet_hmc)
    data = np.asarray(pet_img.dataobj, dtype=np.float64)
    solution = solve_gtm(pet_img, data, motion_tsv, atlas_fine, reference_mask, psf_fwhm_mm,
                         reference_name)
    ids, corrected, reference_id = solution.ids, solution.corrected, solution.reference_id
    labels_fine = solution.labels_fine
    volumes = np.array([(labels_fine == i).sum() for i in ids], dtype=float)
    atlas_ids = [k for k, i in enumerate(ids) if i not in (0, reference_id, UNLABELLED_BRAIN)]
    # without a carved reference (its mask misses every fine voxel of its labels) the
    # reference is its whole atlas region group
    reference_tac = corrected[ids == reference_id][0] if reference_id in ids else None
    table = tacs_table({int(ids[k]): corrected[k] for k in atlas_ids},
                       {int(ids[k]): volumes[k] for k in atlas_ids},
                       reference_tac, reference_name, PETMetadata.from_record(metadata))
    path = str(Path(out_dir) / "tacs_pvc-GTM.tsv")
    table.to_csv(path, sep="\t", index=False, float_format="%.6g")
    fwhm = np.sqrt(psf_fwhm_mm ** 2 + solution.variance_mm2 / FWHM_TO_SIGMA ** 2).mean(axis=0)
    corrected_pet = None
    if voxelwise_method:
        from workflows.imaging.voxel_pvc import correct_frames
        corrected_pet = str(Path(out_dir) / f"pet_pvc-{voxelwise_method.upper()}.nii.gz")
        frames = correct_frames(voxelwise_method, data, solution, psf_fwhm_mm)
        nib.save(nib.Nifti1Image(frames.astype(np.float32), pet_img.affine, pet_img.header),
                 corrected_pet)
    return path, [round(float(f), 3) for f in fwhm], corrected_pet


def solve_gtm(pet_img, data: NDArray, motion_tsv: str, atlas_fine: str, reference_mask: str,
              psf_fwhm_mm: float, reference_name: str) -> GTMSolution:
    """The GTM of a realigned scan (``pet_img``, its frames ``data`` as float64); see
    :func:`extract_tacs_gtm`."""
    import nibabel as nib
    import pandas as pd

    from workflows.imaging.atlas import reference_labels
    fine_img = nib.load(atlas_fine)
    pet_vox = tuple(float(v) for v in pet_img.header.get_zooms()[:3])
    factors = fine_factors(pet_vox)
    reference_pet = grown_reference(np.asarray(nib.load(reference_mask).dataobj) > 0.5,
                                    pet_vox)
    labels_fine, reference_id = carve_reference(np.asarray(fine_img.dataobj).round(),
                                                reference_pet, factors,
                                                reference_labels(reference_name))
    fine_vox = tuple(float(v) for v in fine_img.header.get_zooms()[:3])
    ids, gtm_scanner, labels_pet = geometric_transfer_matrix(labels_fine, factors, fine_vox,
                                                             psf_fwhm_mm)
    _, gtm_realigned, _ = geometric_transfer_matrix(labels_fine, factors, fine_vox,
                                                    realigned_fwhm_mm(psf_fwhm_mm, pet_vox))
    flat = data.reshape(-1, data.shape[3])
    if labels_pet.size != flat.shape[0]:
        raise ValueError(f"{atlas_fine}: fine grid does not match the PET grid "
                         f"(factors {factors})")
    motion = pd.read_csv(motion_tsv, sep="\t", na_values=["n/a"])[
        ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]].to_numpy(dtype=float)
    brain = np.array(np.nonzero(labels_pet.reshape(data.shape[:3]) > 0))
    unknown = np.isnan(motion).any(axis=1)
    variance = realignment_variance_mm2(np.nan_to_num(motion), pet_img.affine, brain,
                                        psf_fwhm_mm)
    mean_variance = np.array([mean_resampling_variance_mm2(v, psf_fwhm_mm) for v in pet_vox])
    # frames resampled elsewhere at unknown poses (PETPrep without its estimates, which
    # resamples by cubic B-spline too): the blur of one resampling at a sub-voxel fraction
    # uniform over the voxel
    variance[unknown] = mean_variance
    index = np.searchsorted(ids, labels_pet)
    counts = np.bincount(index, minlength=ids.size)
    observed = np.stack([np.bincount(index, weights=flat[:, f], minlength=ids.size)
                         for f in range(flat.shape[1])], axis=1) / counts[:, None]
    fractions = np.divide(variance, mean_variance, out=np.zeros_like(variance),
                          where=mean_variance > 0)
    corrected = gtm_correct_frames(observed, gtm_scanner, gtm_realigned, fractions.mean(axis=1))
    return GTMSolution(labels_fine, factors, fine_vox, ids, labels_pet, corrected, variance,
                       reference_id)
