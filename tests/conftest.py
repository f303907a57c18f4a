"""Shared fixtures: simulated truth from physics, and the team's reference data."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workflows.kinetics.compartments import TissueParameters, simulate_frames
from workflows.kinetics.frames import SEED_PROTOCOLS, FrameTiming

os.environ.setdefault("NIPYPE_NO_ET", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VENDORED = Path(__file__).resolve().parent / "data"

# Modules that run the participant level, ROBEX or the simulator, slowest first (their times:
# docs/validation.md, Speed): started before the others so that `make test`'s two workers
# (pytest-xdist, a module each) overlap them instead of ending on one
SLOW_MODULES = ("test_participant.py", "test_petprep.py", "test_pvc_group.py",
                "test_anat_cohort.py", "test_simulate.py", "test_anat_real.py", "test_faults.py",
                "test_group.py", "test_pvc_acceptance.py", "test_two_sessions.py",
                "test_hostile.py", "test_occupancy.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = Path(str(item.fspath)).name
        return SLOW_MODULES.index(name) if name in SLOW_MODULES else len(SLOW_MODULES)
    items.sort(key=rank)               # stable: the order within a module stays as written


# Reference region: one tissue compartment, K1 0.12 mL/min/mL, k2 0.15 /min (V_ND = 0.8).
K1_REF, K2_REF = 0.12, 0.15


def reference_parameters() -> TissueParameters:
    return TissueParameters(np.array([K1_REF]), np.array([K2_REF]), np.zeros(1), np.zeros(1))


@pytest.fixture(scope="session", params=sorted(SEED_PROTOCOLS))
def seed_protocol(request) -> tuple[str, FrameTiming]:
    return request.param, FrameTiming.from_protocol(SEED_PROTOCOLS[request.param])


@pytest.fixture(scope="session")
def carfentanil_timing() -> FrameTiming:
    return FrameTiming.from_protocol(SEED_PROTOCOLS["carfentanil"])


@pytest.fixture(scope="session")
def reference_tac(carfentanil_timing) -> np.ndarray:
    return simulate_frames(carfentanil_timing, reference_parameters())[0]


def tree_digest(root: Path) -> str:
    """SHA-256 over every file's relative path and bytes under ``root``."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_data(*parts: str) -> Path:
    """A file of the team's reference data beside the project (../shared/data). Missing, the
    test skips on a developer's machine but fails under CI (CI=true), where the data must be."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"reference data {path} not present"
        if under_ci():
            pytest.fail(message + " (CI must have ../shared/data)")
        pytest.skip(message)
    return path


def require(module: str):
    """Import a test-only dependency; missing, skip on a developer's machine, fail under CI."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        if under_ci():
            pytest.fail(f"{module} is not installed ({err}); CI installs the test extras")
        pytest.skip(f"{module} not installed")


def pet_metadata(sidecar: Path | str) -> dict:
    """A PET sidecar as the nodes of the participant graph receive it (a checked record)."""
    import json

    from workflows.kinetics.metadata import PETMetadata

    return PETMetadata.from_sidecar(json.loads(Path(sidecar).read_text())).as_record()


def nearest_on_grid(path: Path, target) -> np.ndarray:
    """The image at ``path`` on the voxel grid of the image ``target`` (nearest neighbour,
    through world coordinates; 0 outside)."""
    from scipy import ndimage

    img = nib.load(path)
    to_source = np.linalg.inv(img.affine) @ target.affine
    ijk = np.indices(target.shape[:3]).reshape(3, -1)
    return ndimage.map_coordinates(np.asarray(img.dataobj), to_source[:3, :3] @ ijk +
                                   to_source[:3, 3:4], order=0).reshape(target.shape[:3])


def two_row_image(folder: Path, reference_tac: np.ndarray, tacs: np.ndarray
                  ) -> tuple[Path, dict[str, Path]]:
    """A (2, n, 1, frames) float32 image: row 0 the reference TAC n times, row 1 the n TACs;
    with the masks of each row ("ref", "brain"). Returns the image's path and the masks'."""
    n = len(tacs)
    data = np.stack([np.tile(reference_tac, (n, 1)), tacs])[:, :, None, :]
    pet = folder / "pet.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), pet)
    masks = {}
    for name, row in (("ref", 0), ("brain", 1)):
        mask = np.zeros((2, n, 1), np.uint8)
        mask[row] = 1
        masks[name] = folder / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(mask, np.eye(4)), masks[name])
    return pet, masks


def mni_roi_means(path, rois):
    """Mean of an MNI map (2 mm output grid; NaN as 0) over each of ``rois``' atlas labels."""
    import pandas as pd

    from workflows.imaging.atlas import atlas_on_grid, mni_grid, region_labels
    labels = atlas_on_grid(mni_grid(2.0))
    data = np.nan_to_num(nib.load(path).get_fdata())
    return pd.Series({roi: data[np.isin(labels, region_labels(roi))].mean() for roi in rois})
