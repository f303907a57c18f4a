"""Deface a T1w with pydeface's own template and face mask (issue 19's validation; not a CI test).

    pip install pydeface     # for its template and face mask only; FSL is not needed
    python benchmarks/deface_pydeface.py T1W OUT

pydeface registers its whole-head template to the T1w (FSL FLIRT, affine, mutual information),
brings its face mask along and multiplies the T1w by it. Here ANTs' affine registration with
Mattes mutual information takes FLIRT's place; the template and the mask are pydeface's. The
cohort benchmark's ``--real-defaced OUT`` then runs petbind on it against the plain T1w's truth.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("t1w")
    p.add_argument("out")
    args = p.parse_args()
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"     # repeatable, as petbind runs
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from workflows.imaging.repeatable import seeded_ants
    ants = seeded_ants()

    data = files("pydeface") / "data"
    head = ants.image_read(args.t1w)
    reg = ants.registration(fixed=head, moving=ants.image_read(str(data / "mean_reg2mean.nii.gz")),
                            type_of_transform="Affine", aff_metric="mattes")
    keep = ants.apply_transforms(head, ants.image_read(str(data / "facemask.nii.gz")),
                                 reg["fwdtransforms"], interpolator="linear").numpy()
    source = nib.load(args.t1w)
    nib.save(nib.Nifti1Image(np.asarray(source.dataobj, dtype=np.float32) * keep,
                             source.affine, source.header), args.out)
    print(f"{args.out}: {int((keep < 0.5).sum())} voxels removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
