"""Time-activity curves of the reference and of every atlas region, and their regional fits."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from workflows.imaging.atlas import (REGION_GROUPS, atlas_labels, reference_labels,
                                     region_labels)
from workflows.kinetics.frames import FrameTiming
from workflows.kinetics.metadata import PETMetadata
from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import get_model
from workflows.kinetics.weights import frame_weights

# the columns of the participant level's _kinpar.tsv
KINPAR_COLUMNS = ("BPND", "R1", "k2", "k2a", "BPND-se", "R1-se", "k2-se", "wRSS", "on_bound",
                  "warnings")


def tacs_table(label_tacs: dict[int, NDArray[np.float64]], volumes: dict[int, float],
               reference_tac: NDArray[np.float64] | None, reference_name: str,
               metadata: PETMetadata) -> pd.DataFrame:
    """The ``_tacs.tsv`` table from per-label TACs (frame means, as in the images) and label
    volumes: frame_start, frame_end (s), the reference region, each named region group (the
    volume-weighted mean of its labels) and each atlas label, decay-corrected. Without
    ``reference_tac`` the reference is its whole region group."""
    def group(labels: list[int]) -> NDArray[np.float64] | None:
        present = [i for i in labels if i in label_tacs]
        if not present:
            return None
        weights = np.array([volumes[i] for i in present])
        return np.average(np.stack([label_tacs[i] for i in present]), axis=0, weights=weights)

    timing = metadata.timing
    columns = {"frame_start": timing.start_s, "frame_end": timing.end_s}
    columns[reference_name] = (reference_tac if reference_tac is not None
                               else group(reference_labels(reference_name)))
    for region in REGION_GROUPS:
        tac = group(region_labels(region)) if region != reference_name else None
        if tac is not None:
            columns[region] = tac
    for index, name in atlas_labels().items():
        if index in label_tacs:
            columns[name] = label_tacs[index]
    table = pd.DataFrame(columns)
    values = table.columns[2:]
    table[values] = metadata.to_decay_corrected(table[values].to_numpy().T).T
    return table


def extract_tacs(pet_hmc: str, metadata: dict, atlas_pet: str, reference_mask: str,
                 reference_name: str, out_dir: str) -> str:
    """Mean decay-corrected activity per frame in the reference region, each named region group
    (bilateral) and each atlas label; BIDS layout (frame_start, frame_end in seconds).
    ``metadata``: :meth:`PETMetadata.as_record`."""
    data = np.asarray(nib.load(pet_hmc).dataobj, dtype=np.float32)
    labels = np.asarray(nib.load(atlas_pet).dataobj).round().astype(int)
    ref = np.asarray(nib.load(reference_mask).dataobj) > 0.5
    label_tacs, volumes = {}, {}
    for index in np.unique(labels[labels > 0]):
        mask = labels == index
        label_tacs[int(index)] = data[mask].mean(axis=0, dtype=np.float64)
        volumes[int(index)] = float(mask.sum())
    table = tacs_table(label_tacs, volumes, data[ref].mean(axis=0, dtype=np.float64),
                       reference_name, PETMetadata.from_record(metadata))
    path = str(Path(out_dir) / "tacs.tsv")
    table.to_csv(path, sep="\t", index=False, float_format="%.6g")
    return path


def read_tacs_table(tacs_tsv: str) -> tuple[FrameTiming, pd.DataFrame]:
    """Frame timing and the region columns of a ``_tacs.tsv``."""
    table = pd.read_csv(tacs_tsv, sep="\t")
    start = table["frame_start"].to_numpy()
    return (FrameTiming(start, table["frame_end"].to_numpy() - start),
            table.drop(columns=["frame_start", "frame_end"]))


def prepare_regional_tacs(table: dict, reference: dict, out_dir: str) -> str:
    """A TAC table made elsewhere (e.g. PETPrep's) as petbind's ``_tacs.tsv``: frame_start and
    frame_end in seconds from injection (frames that ended before it dropped, the mean of one
    that began before it taken over its part after), the reference region (the mean of its
    labels, weighted by their volumes where known), then each region kept; decay-corrected to
    injection.
    ``table``: the checked table's record (path, time columns, regions, metadata with times
    from injection); ``reference``: its name, labels and weights."""
    raw = pd.read_csv(table["path"], sep="\t", dtype=str, keep_default_na=False)
    values = raw.apply(lambda c: pd.to_numeric(c.str.strip(), errors="coerce"))
    if table.get("reference_file"):         # the reference's TAC in a file of its own
        ref = pd.read_csv(table["reference_file"], sep="\t", dtype=str, keep_default_na=False)
        times = {"frame_start", "frame_end", "FrameTimesStart", "FrameTimesEnd"}
        ref = ref[[c for c in ref.columns if c not in times]].iloc[:, 0].str.strip()
        values[reference["labels"][0]] = pd.to_numeric(ref, errors="coerce").to_numpy()
    values = values.iloc[table["first_frame"]:].reset_index(drop=True)
    values.iloc[0] *= table["first_frame_scale"]     # a frame begun before injection
    metadata = PETMetadata.from_record(table["metadata"])
    columns = {"frame_start": metadata.timing.start_s, "frame_end": metadata.timing.end_s,
               reference["name"]: np.average(values[reference["labels"]].to_numpy(float),
                                             axis=1, weights=reference["weights"])}
    for region in table["regions"]:
        columns[region] = values[region].to_numpy(float)
    out = pd.DataFrame(columns)
    tacs = out.columns[2:]
    out[tacs] = metadata.to_decay_corrected(out[tacs].to_numpy().T).T
    path = str(Path(out_dir) / "tacs.tsv")
    out.to_csv(path, sep="\t", index=False, float_format="%.8g")
    return path


def fit_regions(tacs_tsv: str, metadata: dict, reference_name: str, out_dir: str,
                model: str = "srtm", regions: list[str] | None = None,
                theta3_range_per_min: list[float] | None = None,
                srtm_kinpar: str | None = None) -> str:
    """A regional model (default SRTM: nonlinear, bounded, multi-start) with counts weights from
    the mean TAC, for the named region groups (default: all in the table but the reference);
    writes ``kinpar.tsv`` (:data:`KINPAR_COLUMNS`) and, beside it, ``kinpar.json``: the model's
    settings. A model that fixes k2' takes the median k2/R1 of ``srtm_kinpar``; basis-function
    models search ``theta3_range_per_min``."""
    from workflows.imaging.voxelwise import k2prime_from_kinpar

    timing, table = read_tacs_table(tacs_tsv)
    ref = table[reference_name].to_numpy()
    regions = regions or [r for r in REGION_GROUPS if r in table.columns and r != reference_name]
    weights = frame_weights("counts", timing, table[regions + [reference_name]].mean(axis=1)
                            .to_numpy(), PETMetadata.from_record(metadata).radionuclide)
    kinetic = get_model(model)
    settings = ModelSettings(theta3_range_per_min=tuple(theta3_range_per_min)
                             if theta3_range_per_min else None)
    info: dict = {}
    if "k2prime_per_min" in kinetic.needs:
        k2prime, n_regions = k2prime_from_kinpar(srtm_kinpar)
        settings = replace(settings, k2prime_per_min=k2prime)
        info["K2PrimeSource"] = (f"median k2/R1 of the regional SRTM fits ({n_regions} "
                                 "regions off their bounds)")
    fit = kinetic.fit_regional(timing, ref, table[regions].to_numpy().T, weights, settings)
    path = Path(out_dir) / "kinpar.tsv"
    fit.table(regions, KINPAR_COLUMNS).to_csv(path, sep="\t", index=False,
                                              float_format="%.6g", na_rep="n/a")
    info = {"Model": kinetic.label, **kinetic.describe(settings), **info}
    path.with_suffix(".json").write_text(json.dumps(info))
    return str(path)
