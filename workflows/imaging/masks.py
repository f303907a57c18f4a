"""Atlas labels, brain mask and the reference region in PET space.

The Neuromorphometrics atlas (MNI152NLin2009cAsym) is taken to PET space in one interpolation
(inverse SyN, inverse affine, inverse PET->T1w rigid; nearest neighbour). The reference region is
the tracer's atlas region, restricted geometrically in MNI coordinates as Magia does, intersected
with the subject's grey matter (probability > 0.5), then trimmed around the mode of the late
PET image (kernel density, half-maximum window; :func:`late_mean_image`).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.stats import gaussian_kde

from workflows.imaging.atlas import atlas_path, canonical_region, load_atlas, reference_labels
from workflows.kinetics.frames import FrameTiming
from workflows.kinetics.metadata import PETMetadata

GM_THRESHOLD = 0.5
# MNI z (mm) of the pons within the atlas's single brainstem label: below the midbrain, above
# the medulla, where the label is widest (basis pontis)
PONS_Z_MM = (-45.0, -22.0)


def reference_region_mni(name: str) -> np.ndarray:
    """Boolean mask of a reference region on the atlas grid (MNI), with Magia's geometric
    restrictions: cerebellar cortex without +-16 mm about the midline, the anterior 16 mm, the
    lowest 10 mm and the highest 20 mm; occipital cortex without the lowest and highest sixth of
    its axial extent; the pons as the brainstem label's widest part, :data:`PONS_Z_MM`. Other
    regions: the atlas region as it is."""
    atlas = load_atlas()
    labels = np.asarray(atlas.dataobj)
    name = canonical_region(name)
    mask = np.isin(labels, reference_labels(name))
    ijk = np.argwhere(mask)
    xyz = ijk @ atlas.affine[:3, :3].T + atlas.affine[:3, 3]
    keep = np.ones(len(ijk), dtype=bool)
    if name == "cerebellargm":
        keep &= np.abs(xyz[:, 0]) > 16
        keep &= xyz[:, 1] < xyz[:, 1].max() - 16
        keep &= (xyz[:, 2] > xyz[:, 2].min() + 10) & (xyz[:, 2] < xyz[:, 2].max() - 20)
    elif name == "occipital":
        lo, hi = xyz[:, 2].min(), xyz[:, 2].max()
        sixth = (hi - lo) / 6
        keep &= (xyz[:, 2] > lo + sixth) & (xyz[:, 2] < hi - sixth)
    elif name == "pons":
        keep &= (xyz[:, 2] > PONS_Z_MM[0]) & (xyz[:, 2] < PONS_Z_MM[1])
    out = np.zeros(labels.shape, dtype=bool)
    out[tuple(ijk[keep].T)] = True
    return out


def trim_by_mode(values: np.ndarray) -> np.ndarray:
    """Boolean selection of ``values`` within the half-maximum window around the mode of their
    kernel density (Magia's data-driven trim of the reference region)."""
    values = np.asarray(values, dtype=float)
    if values.size < 10 or np.ptp(values) == 0:
        return np.ones(values.size, dtype=bool)
    kde = gaussian_kde(values)
    grid = np.linspace(values.min(), values.max(), 512)
    density = kde(grid)
    peak = int(np.argmax(density))
    half = density[peak] / 2
    lo = peak
    while lo > 0 and density[lo - 1] >= half:
        lo -= 1
    hi = peak
    while hi < grid.size - 1 and density[hi + 1] >= half:
        hi += 1
    return (values >= grid[lo]) & (values <= grid[hi])


def late_mean_image(data: np.ndarray, timing: FrameTiming) -> np.ndarray:
    """Duration-weighted mean of the frames whose mid-time lies in the second half of the scan
    (``data``: x, y, z, frames), the image the reference region is trimmed on.

    Late frames show what the trim is for: activity spilled in from tissue with receptors (or
    reference labels lying on it) grows with time relative to the reference, while early frames
    show blood flow, in which the reference and its neighbours look alike. An unweighted mean of
    all frames would be dominated by the many short early frames (docs/validation.md)."""
    late = np.flatnonzero(timing.mid_s >= timing.end_s[-1] / 2)
    return np.average(data[..., late], axis=-1, weights=timing.duration_s[late])


def masks_in_pet_space(petref: str, pet_hmc: str, metadata: dict, brain_mask: str,
                       gm_prob: str, mni2t1w: str, pet2t1w: str, reference_region: str,
                       out_dir: str) -> tuple[str, str, str, str]:
    """Returns, on the PET grid: the atlas labels, the brain mask, the GM probability and the
    reference-region mask (``metadata``: :meth:`PETMetadata.as_record`)."""
    import ants

    from workflows.imaging.chains import mni_to_pet

    out = Path(out_dir)
    pet = ants.image_read(petref)
    to_pet, invert = mni_to_pet(mni2t1w, pet2t1w)
    labels = ants.apply_transforms(pet, ants.image_read(str(atlas_path())), to_pet,
                                   interpolator="nearestNeighbor", whichtoinvert=invert)
    ref_mni = nib.Nifti1Image(reference_region_mni(reference_region).astype(np.float32),
                              load_atlas().affine)
    ref_mni_path = str(out / "reference_mni.nii.gz")
    nib.save(ref_mni, ref_mni_path)
    ref_pet = ants.apply_transforms(pet, ants.image_read(ref_mni_path), to_pet,
                                    interpolator="linear", whichtoinvert=invert)
    brain = ants.apply_transforms(pet, ants.image_read(brain_mask), [pet2t1w],
                                  interpolator="linear", whichtoinvert=[True])
    gm = ants.apply_transforms(pet, ants.image_read(gm_prob), [pet2t1w],
                               interpolator="linear", whichtoinvert=[True])
    labels_path = str(out / "atlas_space-pet.nii.gz")
    ants.image_write(labels, labels_path)
    brain_path = str(out / "brainmask_space-pet.nii.gz")
    ants.image_write(pet.new_image_like((brain.numpy() > 0.5).astype(np.float32)), brain_path)
    gm_path = str(out / "gm_space-pet.nii.gz")
    ants.image_write(gm, gm_path)

    candidate = (ref_pet.numpy() > 0.5) & (gm.numpy() > GM_THRESHOLD)
    if candidate.sum() < 10:        # poor segmentation: fall back to the atlas region alone
        candidate = ref_pet.numpy() > 0.5
    data = np.asarray(nib.load(pet_hmc).dataobj, dtype=np.float64)
    timing = PETMetadata.from_record(metadata).timing
    keep = trim_by_mode(late_mean_image(data, timing)[candidate])
    reference = np.zeros(candidate.shape, dtype=np.float32)
    reference[tuple(np.argwhere(candidate)[keep].T)] = 1
    ref_path = str(out / "reference_space-pet.nii.gz")
    ants.image_write(pet.new_image_like(reference), ref_path)
    return labels_path, brain_path, gm_path, ref_path
