"""A subject's phantom: anatomy (the template and atlas deformed, or a given T1w registered by
petbind's anatomical numerics), and each scan's dynamic PET with its truth, as arrays. The BIDS
dataset around them is written by :mod:`bids_app.simulate`."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from nibabel.affines import voxel_sizes
from numpy.typing import NDArray

from workflows.imaging.atlas import Grid, load_atlas, load_template, mni_grid, region_labels
from workflows.imaging.resolution import fine_factors, smooth_fwhm
from workflows.kinetics.compartments import FengInput
from workflows.kinetics.frames import FrameTiming
from workflows.simulation.anatomy import (DEFACE_MARGIN_MM, deface, native_grid_around,
                                          random_warp, sample_image, synthesize_t1w,
                                          template_brain)
from workflows.simulation.pet import (KineticSettings, pose_centre, random_motion,
                                      scan_pet_poses, tac_tables, voxel_tacs)
from workflows.simulation.receptors import tissue_class_of_labels

RIM_ACTIVITY_FRACTION = 0.5   # activity of the unlabelled rim of the brain, of cortex


class Atlas:
    """The MNI atlas grid, labels and tissue classes, loaded once."""

    def __init__(self) -> None:
        img = load_atlas()
        self.labels = np.asarray(img.dataobj).astype(np.int16)
        self.affine = img.affine
        self.voxel_mm = float(abs(img.affine[0, 0]))
        coords = np.argwhere(self.labels > 0)
        corners = np.array([coords.min(0), coords.max(0)], dtype=float)
        world = corners @ self.affine[:3, :3].T + self.affine[:3, 3]
        self.box = (world.min(0), world.max(0))


def mni_output_grid() -> Grid:
    return mni_grid(2.0)


def to_output_grid(values: np.ndarray, atlas: Atlas, grid: Grid, order: int = 1) -> np.ndarray:
    return sample_image((values, atlas.affine), grid.world_coordinates(), order=order
                        ).reshape(grid.shape)


def native_points(warp, mni_points: NDArray[np.float64], native: Grid, iterations: int = 30
                  ) -> NDArray[np.float64]:
    """The native points (mm) that ``warp`` (native -> MNI) maps to ``mni_points``: from the
    warp's least-squares affine fit on ``native``'s grid, x <- x + A^-1 (y - warp(x)) until
    the warp's smooth displacement is undone (sub-micron after a few steps)."""
    sample = native.world_coordinates()[::97]
    design = np.c_[sample, np.ones(len(sample))]
    fit = np.linalg.lstsq(design, warp(sample), rcond=None)[0]       # (4, 3): y = [x 1] fit
    inverse = np.linalg.inv(fit[:3].T)
    x = (mni_points - fit[3]) @ inverse.T
    for _ in range(iterations):
        step = (mni_points - warp(x)) @ inverse.T
        x += step
        if np.abs(step).max() < 1e-4:
            break
    return x


def native_map_to_mni(values: NDArray[np.float64], native: Grid, warp, grid: Grid,
                      support: NDArray[np.bool_]) -> NDArray[np.float64]:
    """A native map on ``grid`` (MNI) by linear interpolation through the inverse of ``warp``,
    within ``support`` (0 elsewhere)."""
    out = np.zeros(grid.shape)
    points = grid.world_coordinates()[support.ravel()]
    out[support] = sample_image((values, native.affine), native_points(warp, points, native),
                                order=1)
    return out


def fine_pet_grid(pet: Grid) -> Grid:
    """The grid :func:`workflows.imaging.resolution.fine_factors` times finer than ``pet`` per
    axis, with fine voxel k i at the centre of PET voxel i."""
    factors = fine_factors(tuple(voxel_sizes(pet.affine)))
    affine = pet.affine.copy()
    affine[:3, :3] = pet.affine[:3, :3] / np.array(factors)
    return Grid(tuple(n * k for n, k in zip(pet.shape, factors)), affine)


@dataclass
class Anatomy:
    warp: object                 # callable: native points (N, 3) -> MNI points
    t1_grid: Grid
    t1: np.ndarray
    labels_t1: np.ndarray        # the atlas on the T1w grid
    fine: Grid
    labels_fine: np.ndarray
    pet_grid: Grid
    labels_pet: np.ndarray
    brain_t1: np.ndarray
    rim_fine: np.ndarray         # brain voxels without an atlas label (fine grid)


def make_anatomy(atlas: Atlas, rng: np.random.Generator, t1_voxel_mm: float,
                 pet_voxel_mm: float, defaced: bool = False,
                 deface_margin_mm: float = DEFACE_MARGIN_MM) -> Anatomy:
    """A random head: the template deformed (:func:`random_warp`), its T1w (face removed with
    ``defaced``, up to ``deface_margin_mm`` from the brain), and the atlas on the T1w grid, the
    fine grid of the PET simulation and the PET grid."""
    template = load_template()
    warp = random_warp(rng, atlas.box)
    t1_grid = native_grid_around(warp, atlas.box, t1_voxel_mm, margin_mm=25.0)
    labels_t1 = sample_image((atlas.labels, atlas.affine), warp(t1_grid.world_coordinates()),
                             order=0).reshape(t1_grid.shape)
    t1, brain_t1 = synthesize_t1w(template, warp, t1_grid, rng, labels_t1 > 0, defaced=defaced,
                                  deface_margin_mm=deface_margin_mm)
    fine_mm = min(1.5, pet_voxel_mm)
    fine = native_grid_around(warp, atlas.box, fine_mm, margin_mm=8.0)
    fine_points = warp(fine.world_coordinates())
    labels_fine = sample_image((atlas.labels, atlas.affine), fine_points,
                               order=0).reshape(fine.shape)
    template_fine = sample_image(template, fine_points, order=1).reshape(fine.shape)
    rim_fine = template_brain(template_fine, labels_fine > 0) & (labels_fine == 0)
    pet_grid = native_grid_around(warp, atlas.box, pet_voxel_mm, margin_mm=16.0)
    labels_pet = sample_image((atlas.labels, atlas.affine), warp(pet_grid.world_coordinates()),
                              order=0).reshape(pet_grid.shape)
    return Anatomy(warp, t1_grid, t1, labels_t1, fine, labels_fine, pet_grid, labels_pet,
                   brain_t1, rim_fine)


class RegisteredWarp:
    """Native -> MNI points through ANTs transforms estimated by petbind's own anatomical
    numerics (used when the phantom is built on a given T1w)."""

    def __init__(self, mni2t1w: str) -> None:
        self.mni2t1w = mni2t1w

    def __call__(self, points: np.ndarray) -> np.ndarray:
        import ants

        lps = points * np.array([-1.0, -1.0, 1.0])          # ITK points are LPS
        frame = pd.DataFrame(lps, columns=["x", "y", "z"])
        # mapping points native -> MNI uses the transforms that resample MNI images to native
        out = ants.apply_transforms_to_points(3, frame, [self.mni2t1w])
        return out[["x", "y", "z"]].to_numpy() * np.array([-1.0, -1.0, 1.0])


def anatomy_from_t1w(t1w: Path, atlas: Atlas, scratch: Path, seed: int,
                     pet_voxel_mm: float, defaced: bool = False,
                     deface_margin_mm: float = DEFACE_MARGIN_MM) -> Anatomy:
    """Anatomy from a given T1w: brain extraction and SyN normalisation (petbind's anatomical
    numerics) give the native -> MNI mapping through which the atlas and receptor maps are
    pulled into the subject's space. The T1w itself is kept unchanged, or its face removed
    (:func:`~workflows.simulation.anatomy.deface`, up to ``deface_margin_mm`` from the brain)
    with ``defaced``."""
    import nibabel as nib

    import workflows.imaging.anat as anat

    work = Path(tempfile.mkdtemp(dir=scratch))
    n4, _, robex_mask = anat.bias_correct_and_extract(str(t1w), str(work), seed=seed)
    normalised = anat.normalise(n4, robex_mask, str(work))
    mask = normalised.brain_mask
    warp = RegisteredWarp(normalised.mni2t1w)
    t1_img = nib.load(t1w)
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
    brain_t1 = np.asarray(nib.load(mask).dataobj) > 0
    t1_grid = Grid(t1.shape[:3], t1_img.affine)

    def grid_around_brain(voxel_mm: float, margin_mm: float) -> Grid:
        corners = np.argwhere(brain_t1)
        world = np.array([corners.min(0), corners.max(0)]) @ t1_img.affine[:3, :3].T + \
            t1_img.affine[:3, 3]
        lo, hi = world.min(0) - margin_mm, world.max(0) + margin_mm
        shape = tuple(int(v) for v in np.ceil((hi - lo) / voxel_mm) + 1)
        affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
        affine[:3, 3] = np.floor(lo / voxel_mm) * voxel_mm
        return Grid(shape, affine)

    fine = grid_around_brain(min(1.5, pet_voxel_mm), 8.0)
    labels_fine = sample_image((atlas.labels, atlas.affine), warp(fine.world_coordinates()),
                               order=0).reshape(fine.shape)
    in_mask = sample_image((brain_t1.astype(np.uint8), t1_img.affine), fine.world_coordinates(),
                           order=0).reshape(fine.shape) > 0
    rim_fine = in_mask & (labels_fine == 0)
    pet_grid = grid_around_brain(pet_voxel_mm, 16.0)
    labels_pet = sample_image((atlas.labels, atlas.affine), warp(pet_grid.world_coordinates()),
                              order=0).reshape(pet_grid.shape)
    mni_t1 = warp(t1_grid.world_coordinates())
    labels_t1 = sample_image((atlas.labels, atlas.affine), mni_t1, order=0).reshape(t1_grid.shape)
    if defaced:
        t1 = deface(t1, mni_t1, brain_t1, float(min(voxel_sizes(t1_img.affine))),
                    deface_margin_mm)
    return Anatomy(warp, t1_grid, t1, labels_t1, fine, labels_fine, pet_grid, labels_pet,
                   brain_t1, rim_fine)


@dataclass
class ScanPhantom:
    """One simulated scan and its truth (PET grid unless a name says otherwise)."""

    timing: FrameTiming
    dose: float                          # relative injected dose (plasma input scaled by it)
    pet: NDArray[np.float32]             # (x, y, z, frames), decay-corrected Bq/mL
    bpnd: NDArray[np.float64]            # the receptor truth at the head's unmoved pose
    reference_mask: NDArray[np.bool_]    # the reference region's voxels (BPND exactly 0)
    labels_fine: NDArray[np.int16]       # the atlas on the GTM's fine grid
    fine_grid: Grid
    motion: NDArray[np.float64]          # (frames, 6) head poses
    pose_centre_mm: NDArray[np.float64]
    pet_corrected: NDArray[np.float32] | None = None   # the same scan without head motion
    bpnd_pv: NDArray[np.float64] | None = None  # the PV-matched truth (:func:`pv_matched_bpnd`)


def simulate_scan(anatomy: Anatomy, atlas: Atlas, bp_atlas: np.ndarray, timing: FrameTiming,
                  kinetics: KineticSettings, reference_region: str, radionuclide: str,
                  motion_mm: float, psf_fwhm_mm: float, noise: float,
                  rng: np.random.Generator, motion_corrected: bool = False,
                  theta3_range_per_min: tuple[float, float] | None = None) -> ScanPhantom:
    """Dynamic PET from the receptor truth ``bp_atlas`` (on the atlas grid): kinetics per voxel
    from a plasma input scaled by a random dose, the brain's unlabelled rim at
    :data:`RIM_ACTIVITY_FRACTION` of cortex, head motion, the scanner's PSF and noise; with
    ``motion_corrected`` also the scan as perfect motion correction would give it (the head
    still, its own noise), as a preprocessing tool's output; with ``theta3_range_per_min``
    (decay-corrected, 1/min) the PV-matched truth (:func:`pv_matched_bpnd`)."""
    dose = float(rng.uniform(0.8, 1.2))
    plasma = FengInput(a1=FengInput.a1 * dose, a2=FengInput.a2 * dose, a3=FengInput.a3 * dose)
    fine_points = anatomy.warp(anatomy.fine.world_coordinates())
    # nearest neighbour, as for the labels: every voxel of a region carries that region's BPND,
    # so the phantom's regional means are the truth table's
    bp_fine = sample_image((bp_atlas, atlas.affine), fine_points, order=0)
    classes = tissue_class_of_labels(anatomy.labels_fine).reshape(-1)
    tables, bp_grid = tac_tables(timing, kinetics, float(bp_fine.max()), plasma)
    activity = voxel_tacs(classes, bp_fine, tables, bp_grid)
    # the unlabelled rim of the brain: cortex partial-volumed with CSF
    cortex_bp = np.array([np.median(bp_fine[classes == 0])])
    rim_tac = voxel_tacs(np.zeros(1, dtype=np.int8), cortex_bp, tables, bp_grid)[0]
    activity[anatomy.rim_fine.reshape(-1)] = RIM_ACTIVITY_FRACTION * rim_tac
    activity = activity.reshape((*anatomy.fine.shape, timing.n_frames))
    motion = random_motion(timing.n_frames, motion_mm, rng)
    still = np.zeros_like(motion)
    motions = [motion] + ([still] if motion_corrected else [])
    # the noise-free, motion-free scan comes last and draws no noise: the noisy images are
    # the same with or without it
    clean = theta3_range_per_min is not None
    pet, *corrected = scan_pet_poses(activity, anatomy.fine, anatomy.pet_grid, timing,
                                     motions + [still] * clean, psf_fwhm_mm, noise,
                                     radionuclide, rng,
                                     noisy=[True] * len(motions) + [False] * clean)
    pet_points = anatomy.warp(anatomy.pet_grid.world_coordinates())
    bp_native = sample_image((bp_atlas, atlas.affine), pet_points, order=0).reshape(
        anatomy.pet_grid.shape)
    reference_atlas_labels = region_labels(reference_region)
    reference = np.isin(anatomy.labels_pet, reference_atlas_labels) & (bp_native == 0.0)
    # the labels on the grid the GTM models the blur on (PET voxel i is fine voxel k i)
    fine = fine_pet_grid(anatomy.pet_grid)
    labels_fine = sample_image((atlas.labels, atlas.affine),
                               anatomy.warp(fine.world_coordinates()), order=0)
    # the reference tissue's own TAC: its labels' tissue class at BPND 0
    reference_class = np.unique(tissue_class_of_labels(np.asarray(reference_atlas_labels)))
    if reference_class.size != 1:
        raise ValueError(f"reference region {reference_region}: labels of several tissue "
                         "classes have no single TAC")
    reference_tac = tables[int(reference_class[0]), 0]
    bpnd_pv = (pv_matched_bpnd(corrected.pop(), reference_tac, anatomy.labels_pet > 0, timing,
                               theta3_range_per_min) if clean else None)
    return ScanPhantom(timing, dose, pet, bp_native, reference,
                       labels_fine.reshape(fine.shape).astype(np.int16), fine, motion,
                       pose_centre(anatomy.fine), corrected[0] if corrected else None, bpnd_pv)


def pv_matched_bpnd(clean: NDArray[np.float32], reference_tac: NDArray[np.float64],
                    brain: NDArray[np.bool_], timing: FrameTiming,
                    theta3_range_per_min: tuple[float, float], n_bases: int = 300
                    ) -> NDArray[np.float64]:
    """BPND as a perfect pipeline without partial-volume correction finds it: SRTM by basis
    functions fitted to each ``brain`` voxel of the noise-free, motion-free scan at the
    scanner's resolution (``clean``: x, y, z, frames, decay-corrected), with the reference
    tissue's own TAC (``reference_tac``, frames), uniform weights. A reference region is
    chosen large so that its core is free of partial volume; the mean over its whole mask
    would carry the spill-over from neighbouring cortex with receptors, which a careful
    pipeline avoids. What remains between this and the receptor truth is the targets' partial
    volume alone; between it and an estimate, the pipeline's own errors (registration,
    reference region, noise)."""
    from workflows.kinetics.models.srtm_bfm import fit_srtm_bfm, make_basis_set

    flat = clean.reshape(-1, timing.n_frames)
    reference_tac = np.asarray(reference_tac, dtype=np.float64)
    basis = make_basis_set(timing, reference_tac, np.ones(timing.n_frames),
                           theta3_range_per_min, n_bases)
    out = np.zeros(brain.shape)
    out[brain] = fit_srtm_bfm(flat[brain.ravel()], basis).values["BPND"]
    return out


def simulated_estimate(bp_mni: np.ndarray, grid: Grid, noise: float, smoothing_fwhm_mm: float,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A participant-level MNI map without the participant level: the truth plus estimation
    noise (SD ``noise`` x (0.3 + BPND), spatially correlated with FWHM 6 mm as after PET
    resolution and modest smoothing), and the same smoothed to ``smoothing_fwhm_mm``."""
    vox = float(grid.affine[0, 0])
    brain = bp_mni > 0
    field = smooth_fwhm(rng.standard_normal(grid.shape), 6.0, vox)
    field /= field[brain].std() or 1.0
    estimate = np.where(brain, bp_mni + noise * (0.3 + bp_mni) * field, 0.0)
    return estimate, smooth_fwhm(estimate, smoothing_fwhm_mm, vox)
