"""The phantom's atlas in FreeSurfer's names, as a PETPrep segmentation (``seg-gtm``: FreeSurfer's
aseg structures and the Desikan-Killiany cortical parcels) names its regions: each
Neuromorphometrics label goes to the FreeSurfer structure or parcel that holds it, several
labels to one where FreeSurfer's parcels are coarser (e.g. the four orbital gyri to the lateral
and medial orbitofrontal parcels). The cerebellar vermis, which the phantom gives the binding of
other grey matter, stays unlabelled: FreeSurfer would put it in the cerebellar cortex, the
reference region of the cerebellum-referenced tracers. Indices from FreeSurferColorLUT.txt."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# aseg structures: name without hemisphere -> (left index, right index)
ASEG = {
    "Cerebral-White-Matter": (2, 41), "Lateral-Ventricle": (4, 43), "Inf-Lat-Vent": (5, 44),
    "Cerebellum-White-Matter": (7, 46), "Cerebellum-Cortex": (8, 47), "Thalamus": (10, 49),
    "Caudate": (11, 50), "Putamen": (12, 51), "Pallidum": (13, 52), "Hippocampus": (17, 53),
    "Amygdala": (18, 54), "Accumbens-area": (26, 58), "VentralDC": (28, 60),
    "vessel": (30, 62),
}
MIDLINE = {"3rd-Ventricle": 14, "4th-Ventricle": 15, "Brain-Stem": 16, "CSF": 24,
           "Optic-Chiasm": 85}
# Desikan-Killiany parcels: ctx-lh-<name> is 1000 + index, ctx-rh-<name> 2000 + index
DESIKAN = {
    "caudalanteriorcingulate": 2, "caudalmiddlefrontal": 3, "cuneus": 5, "entorhinal": 6,
    "fusiform": 7, "inferiorparietal": 8, "inferiortemporal": 9, "lateraloccipital": 11,
    "lateralorbitofrontal": 12, "lingual": 13, "medialorbitofrontal": 14, "middletemporal": 15,
    "parahippocampal": 16, "parsopercularis": 18, "parsorbitalis": 19, "parstriangularis": 20,
    "pericalcarine": 21, "postcentral": 22, "posteriorcingulate": 23, "precentral": 24,
    "precuneus": 25, "rostralanteriorcingulate": 26, "rostralmiddlefrontal": 27,
    "superiorfrontal": 28, "superiorparietal": 29, "superiortemporal": 30, "supramarginal": 31,
    "frontalpole": 32, "temporalpole": 33, "transversetemporal": 34, "insula": 35,
}
# Neuromorphometrics stem (the label name without its hemisphere, cortical ones cut at the
# first "_") -> FreeSurfer structure or parcel
FROM_NEUROMORPHOMETRICS = {
    "Cerebral_White_Matter": "Cerebral-White-Matter", "Lateral_Ventricle": "Lateral-Ventricle",
    "Inf_Lat_Vent": "Inf-Lat-Vent", "Cerebellum_White_Matter": "Cerebellum-White-Matter",
    "Cerebellum_Exterior": "Cerebellum-Cortex", "Thalamus_Proper": "Thalamus",
    "Caudate": "Caudate", "Putamen": "Putamen", "Pallidum": "Pallidum",
    "Hippocampus": "Hippocampus", "Amygdala": "Amygdala", "Accumbens_Area": "Accumbens-area",
    "Ventral_DC": "VentralDC", "Basal_Forebrain": "VentralDC", "vessel": "vessel",
    "3rd_Ventricle": "3rd-Ventricle", "4th_Ventricle": "4th-Ventricle",
    "Brain_Stem": "Brain-Stem", "CSF": "CSF", "Optic_Chiasm": "Optic-Chiasm",
    "ACgG": "rostralanteriorcingulate", "MCgG": "caudalanteriorcingulate",
    "PCgG": "posteriorcingulate", "AIns": "insula", "PIns": "insula",
    "AOrG": "lateralorbitofrontal", "LOrG": "lateralorbitofrontal",
    "POrG": "lateralorbitofrontal", "MOrG": "medialorbitofrontal", "GRe": "medialorbitofrontal",
    "MFC": "medialorbitofrontal", "SCA": "medialorbitofrontal", "OrIFG": "parsorbitalis",
    "TrIFG": "parstriangularis", "OpIFG": "parsopercularis", "FO": "parsopercularis",
    "Calc": "pericalcarine", "Cun": "cuneus", "LiG": "lingual", "IOG": "lateraloccipital",
    "MOG": "lateraloccipital", "SOG": "lateraloccipital", "OCP": "lateraloccipital",
    "OFuG": "fusiform", "FuG": "fusiform", "ITG": "inferiortemporal", "MTG": "middletemporal",
    "STG": "superiortemporal", "PP": "superiortemporal", "PT": "superiortemporal",
    "TTG": "transversetemporal", "TMP": "temporalpole", "Ent": "entorhinal",
    "PHG": "parahippocampal", "AnG": "inferiorparietal", "SMG": "supramarginal",
    "PO": "supramarginal", "SPL": "superiorparietal", "PCu": "precuneus", "PoG": "postcentral",
    "MPoG": "postcentral", "PrG": "precentral", "MPrG": "precentral", "CO": "precentral",
    "SFG": "superiorfrontal", "MSFG": "superiorfrontal", "SMC": "superiorfrontal",
    "MFG": "rostralmiddlefrontal", "FRP": "frontalpole",
}


def freesurfer_name(structure: str, left: bool) -> str:
    if structure in MIDLINE:
        return structure
    if structure in DESIKAN:
        return f"ctx-{'lh' if left else 'rh'}-{structure}"
    return f"{'Left' if left else 'Right'}-{structure}"


def freesurfer_index(structure: str, left: bool) -> int:
    if structure in MIDLINE:
        return MIDLINE[structure]
    if structure in DESIKAN:
        return (1000 if left else 2000) + DESIKAN[structure]
    return ASEG[structure][0 if left else 1]


def _structure(label_name: str) -> tuple[str, bool | None]:
    """A Neuromorphometrics label name's FreeSurfer structure and whether it is on the left
    (None: a midline structure)."""
    side, _, rest = label_name.partition("_")
    if side not in ("Left", "Right"):
        return FROM_NEUROMORPHOMETRICS[label_name], None
    stem = rest if rest in FROM_NEUROMORPHOMETRICS else rest.split("_")[0]
    return FROM_NEUROMORPHOMETRICS[stem], side == "Left"


def freesurfer_segmentation(labels: NDArray[np.integer], atlas_names: dict[int, str]
                            ) -> tuple[NDArray[np.int32], dict[int, str]]:
    """Neuromorphometrics ``labels`` (any shape) as FreeSurfer indices (0: unlabelled), and
    index -> name of those present."""
    out = np.zeros(labels.shape, dtype=np.int32)
    present: dict[int, str] = {}
    for label in np.unique(labels):
        name = atlas_names.get(int(label), "")
        if label == 0 or name.startswith("Cerebellar_Vermal"):
            continue
        structure, left = _structure(name)
        index = freesurfer_index(structure, bool(left))
        out[labels == label] = index
        present[index] = freesurfer_name(structure, bool(left))
    return out, dict(sorted(present.items()))
