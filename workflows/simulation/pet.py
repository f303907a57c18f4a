"""Dynamic PET of a phantom: kinetics per voxel from the receptor truth, scanner resolution,
rigid head motion between frames, and noise that follows the counts.

Activity is computed on a fine native grid (1.5 mm), blurred, then sampled on the PET grid through
each frame's head pose by linear interpolation; the blur and the sampling together give the
images the scanner's resolution (:func:`fine_grid_blur_sd_mm`). Values are decay-corrected Bq/mL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from workflows.imaging.atlas import Grid
from workflows.kinetics.compartments import FengInput, TissueParameters, simulate_frames
from workflows.kinetics.frames import FrameTiming, decay_factors
from workflows.imaging.geometry import rotation_matrix
from workflows.imaging.resolution import FWHM_TO_SIGMA, linear_interpolation_variance_mm2
from workflows.simulation.receptors import TISSUE_CLASSES, TISSUE_R1

BPND_STEP = 0.02


@dataclass(frozen=True)
class KineticSettings:
    """Reference region (one tissue: K1_ref mL/min/mL, k2_ref 1/min) and targets: "srtm" makes
    one-tissue targets with V_T = V_ND (1 + BPND) (SRTM holds exactly); "2tc" makes two-tissue
    targets with k3 = BPND k4 (model mismatch, SRTM biased when k4 is slow)."""

    k1_ref: float = 0.12
    k2_ref: float = 0.15
    target_model: str = "srtm"
    k4_per_min: float = 0.5


def tac_tables(timing: FrameTiming, settings: KineticSettings, bpnd_max: float,
               plasma: FengInput) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """TACs on a BPND grid for each tissue class: (n_classes, n_bpnd, n_frames), and the grid."""
    grid = np.arange(0.0, bpnd_max + 2 * BPND_STEP, BPND_STEP)
    r1 = np.repeat([TISSUE_R1[c] for c in TISSUE_CLASSES], grid.size)
    bp = np.tile(grid, len(TISSUE_CLASSES))
    if settings.target_model == "2tc":
        params = TissueParameters.from_srtm(settings.k1_ref, settings.k2_ref, r1, bp,
                                            settings.k4_per_min)
    else:
        params = TissueParameters(r1 * settings.k1_ref, r1 * settings.k2_ref / (1 + bp),
                                  0 * bp, 0 * bp)
    tacs = simulate_frames(timing, params, plasma)
    return tacs.reshape(len(TISSUE_CLASSES), grid.size, timing.n_frames), grid


def voxel_tacs(classes: NDArray[np.int8], bpnd: NDArray[np.float64], tables: NDArray[np.float64],
               bp_grid: NDArray[np.float64]) -> NDArray[np.float32]:
    """(n_voxels, n_frames) TACs by linear interpolation in BPND within each tissue class;
    zero outside the brain (class -1)."""
    out = np.zeros((classes.size, tables.shape[2]), dtype=np.float32)
    position = np.clip(bpnd / BPND_STEP, 0, bp_grid.size - 1.000001)
    low = np.floor(position).astype(int)
    frac = (position - low)[:, None]
    for c in range(tables.shape[0]):
        sel = classes == c
        out[sel] = (1 - frac[sel]) * tables[c, low[sel]] + frac[sel] * tables[c, low[sel] + 1]
    return out


def random_motion(n_frames: int, motion_mm: float, rng: np.random.Generator,
                  radius_mm: float = 80.0) -> NDArray[np.float64]:
    """Head poses per frame (n_frames, 6): translations x, y, z (mm) and rotations about x, y, z
    (rad), zero for the first frame. A random walk scaled so that the pose at the end of the scan
    has SD ``motion_mm`` per translation axis and motion_mm / ``radius_mm`` rad per rotation axis
    (the same displacement at the cortex)."""
    params = np.zeros((n_frames, 6))
    if motion_mm > 0 and n_frames > 1:
        step_sd = np.r_[[motion_mm] * 3, [motion_mm / radius_mm] * 3] / np.sqrt(n_frames - 1)
        params[1:] = np.cumsum(rng.normal(0.0, 1.0, (n_frames - 1, 6)) * step_sd, axis=0)
    return params


def pose_centre(fine: Grid) -> NDArray[np.float64]:
    """The point head poses rotate about: the centre of the fine grid (world mm)."""
    return fine.affine[:3, :3] @ (np.array(fine.shape) / 2) + fine.affine[:3, 3]


def pose_matrix(params: NDArray[np.float64], centre_mm: NDArray[np.float64]) -> NDArray:
    """4x4 world transform of a head pose: rotation about ``centre_mm``, then translation."""
    rot = rotation_matrix(*params[3:6])
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = centre_mm - rot @ centre_mm + params[:3]
    return m


def fine_grid_blur_sd_mm(psf_fwhm_mm: float, fine_voxel_mm: float) -> float:
    """SD (mm) of the Gaussian blur on the fine grid that, followed by linear interpolation at
    arbitrary sub-voxel positions (:func:`linear_interpolation_variance_mm2`), gives images of
    resolution ``psf_fwhm_mm`` (FWHM): the variances add. Zero when the sampling alone is as
    coarse as the PSF."""
    sd = psf_fwhm_mm * FWHM_TO_SIGMA
    return float(np.sqrt(max(sd ** 2 - linear_interpolation_variance_mm2(fine_voxel_mm), 0.0)))


def scan_pet(activity: NDArray[np.float32], fine: Grid, pet: Grid, timing: FrameTiming,
             motion: NDArray[np.float64], psf_fwhm_mm: float, noise_level: float,
             radionuclide: str, rng: np.random.Generator) -> NDArray[np.float32]:
    """Image the fine-grid activity (x, y, z, frames) on the PET grid at resolution
    ``psf_fwhm_mm`` (FWHM), each frame seen through its head pose, then Gaussian noise with
    variance proportional to counts (SD = s sqrt(C x DCF / duration)); ``noise_level`` is the
    relative SD of a voxel at the brain's mean activity in the last frame."""
    return scan_pet_poses(activity, fine, pet, timing, [motion], psf_fwhm_mm, noise_level,
                          radionuclide, rng)[0]


def scan_pet_poses(activity: NDArray[np.float32], fine: Grid, pet: Grid, timing: FrameTiming,
                   motions: list[NDArray[np.float64]], psf_fwhm_mm: float, noise_level: float,
                   radionuclide: str, rng: np.random.Generator,
                   noisy: list[bool] | None = None) -> list[NDArray[np.float32]]:
    """:func:`scan_pet` of the same activity under each of ``motions`` (e.g. the head's and
    none, for an image and its perfectly motion-corrected version): the blur is computed once
    per frame; each image gets its own noise, drawn in the order of ``motions``, except those
    that ``noisy`` marks False (noise-free)."""
    fine_vox = float(abs(fine.affine[0, 0]))
    sigma = fine_grid_blur_sd_mm(psf_fwhm_mm, fine_vox) / fine_vox
    centre = pose_centre(fine)
    pet_points = pet.world_coordinates()
    to_fine = np.linalg.inv(fine.affine)
    images = [np.zeros((*pet.shape, timing.n_frames), dtype=np.float32) for _ in motions]
    for f in range(timing.n_frames):
        frame = ndimage.gaussian_filter(activity[..., f], sigma) if sigma > 0 else activity[..., f]
        for out, motion in zip(images, motions):
            # a point x of the moved head was at pose^-1 x in the reference position
            inverse_pose = np.linalg.inv(pose_matrix(motion[f], centre))
            m = to_fine @ inverse_pose
            coords = (pet_points @ m[:3, :3].T + m[:3, 3]).T
            out[..., f] = ndimage.map_coordinates(frame, coords, order=1, mode="constant",
                                                  cval=0.0).reshape(pet.shape)
    if noise_level > 0:
        dcf = decay_factors(timing, radionuclide)
        for out, with_noise in zip(images, noisy or [True] * len(images)):
            if not with_noise:
                continue
            brain = out[..., -1] > 0.05 * out[..., -1].max()
            mean_last = float(out[..., -1][brain].mean())
            scale = noise_level * mean_last / np.sqrt(mean_last * dcf[-1] /
                                                      timing.duration_min[-1])
            sd = scale * np.sqrt(np.maximum(out, 0) * dcf / timing.duration_min)
            out += (sd * rng.standard_normal(out.shape)).astype(np.float32)
    return images
