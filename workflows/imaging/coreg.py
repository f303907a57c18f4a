"""PET to T1w coregistration: rigid, mutual information (ANTs)."""

from __future__ import annotations

from pathlib import Path


def coregister(petref: str, t1w_brain: str, out_dir: str) -> tuple[str, str]:
    """Rigid registration of the PET reference to the skull-stripped T1w (Mattes mutual
    information, ANTs). Returns the PET -> T1w transform (ITK) and the PET reference resampled
    on the T1w grid (for the report)."""
    from workflows.imaging.repeatable import seeded_ants
    ants = seeded_ants()

    out = Path(out_dir)
    fixed = ants.image_read(t1w_brain)
    moving = ants.image_read(petref)
    reg = ants.registration(fixed=fixed, moving=moving, type_of_transform="Rigid",
                            aff_metric="mattes", outprefix=str(out / "pet_to_t1w_"))
    warped = str(out / "petref_space-T1w.nii.gz")
    ants.image_write(reg["warpedmovout"], warped)
    return reg["fwdtransforms"][0], warped
