"""The transform chains between PET, T1w and MNI space, in the order ANTs applies them.

antsApplyTransforms maps each point of the output grid through its transform list in the order
listed (the first listed first) to find where to sample the input image; registration's
transforms map the fixed image's points to the moving image's. So ``pet2t1w`` (the PET -> T1w
registration: fixed T1w, moving PET) maps T1w points to PET points, the composite ``t1w2mni``
maps MNI points to T1w points, and ``mni2t1w`` T1w points to MNI points
(:class:`workflows.imaging.anat.Normalisation`).
"""

from __future__ import annotations


def mni_to_pet(mni2t1w: str, pet2t1w: str) -> tuple[list[str], list[bool]]:
    """Transforms and inversion flags that bring an MNI image onto a PET grid: a PET point
    goes to T1w (the rigid, inverted), then to MNI."""
    return [pet2t1w, mni2t1w], [True, False]


def pet_to_mni(pet2t1w: str, t1w2mni: str) -> tuple[list[str], list[bool]]:
    """Transforms and inversion flags that bring a PET image onto an MNI grid: an MNI point
    goes to T1w, then to PET (the rigid)."""
    return [t1w2mni, pet2t1w], [False, False]
