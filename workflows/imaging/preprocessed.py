"""PET preprocessed elsewhere (PETPrep's ``space-T1w_desc-preproc_pet``): the frames are
realigned already and lie in the T1w's world, so motion correction and coregistration are not
run; what the later stages need from them is made here instead: the reference image, an
identity PET -> T1w transform, and the head motion the other tool estimated (its confounds
table), where it gives one.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from workflows.imaging.motion import framewise_displacement
from workflows.kinetics.metadata import PETMetadata

MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def motion_table(confounds: str | None, n_frames: int) -> pd.DataFrame:
    """Per-frame head motion (mm, rad) from a confounds table (fMRIPrep/PETPrep
    ``_desc-confounds_timeseries.tsv``: ``trans_*`` in mm, ``rot_*`` in rad, one row per
    frame), with framewise displacement recomputed as petbind's own (Power, 50 mm); without
    one, every value is NaN (no estimate: the QC leaves motion out)."""
    if confounds is None:
        params = np.full((n_frames, len(MOTION_COLUMNS)), np.nan)
    else:
        table = pd.read_csv(confounds, sep="\t", na_values=["n/a"])
        params = table[list(MOTION_COLUMNS)].to_numpy(dtype=float)
    out = pd.DataFrame(params, columns=list(MOTION_COLUMNS))
    out["framewise_displacement"] = framewise_displacement(params)
    out["registered"] = bool(confounds is not None)
    return out


def preprocessed_inputs(pet: str, confounds: str | None, t1w_brain: str, metadata: dict,
                        out_dir: str) -> tuple[str, str, str, str, str]:
    """For a PET image realigned and in T1w space already: the image itself (as the realigned
    PET), its reference (the frames' duration-weighted mean, as petbind's own), the motion
    table (:func:`motion_table`), an identity PET -> T1w transform (ITK) and the reference
    resampled on the T1w grid (for the report and the coregistration QC)."""
    import ants

    out = Path(out_dir)
    img = nib.load(pet)
    timing = PETMetadata.from_record(metadata).timing
    weights = timing.duration_s
    data = np.asarray(img.dataobj, dtype=np.float32)
    mean = np.tensordot(data, weights / weights.sum(), axes=([3], [0])).astype(np.float32)
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    petref = str(out / "petref.nii.gz")
    nib.save(nib.Nifti1Image(mean, img.affine, header), petref)
    motion = str(out / "motion.tsv")
    motion_table(confounds, timing.n_frames).to_csv(motion, sep="\t", index=False,
                                                    float_format="%.6f", na_rep="n/a")
    identity = ants.create_ants_transform(transform_type="AffineTransform", dimension=3)
    pet2t1w = str(out / "identity_0GenericAffine.mat")
    ants.write_transform(identity, pet2t1w)
    petref_t1w = str(out / "petref_space-T1w.nii.gz")
    ants.image_write(ants.apply_transforms(ants.image_read(t1w_brain), ants.image_read(petref),
                                           [pet2t1w]), petref_t1w)
    return pet, petref, motion, pet2t1w, petref_t1w
