"""Time-activity curves of the reference and of every atlas region, and regional SRTM."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.atlas import REGION_GROUPS, atlas_labels, region_labels
from workflows.kinetics.frames import FrameTiming, to_decay_corrected
from workflows.kinetics.regional import fit_srtm
from workflows.kinetics.weights import frame_weights


def tacs_table(label_tacs: dict[int, NDArray[np.float64]], volumes: dict[int, float],
               reference_tac: NDArray[np.float64] | None, reference_name: str,
               timing: FrameTiming, meta: dict) -> pd.DataFrame:
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

    columns = {"frame_start": timing.start_s, "frame_end": timing.end_s}
    columns[reference_name] = (reference_tac if reference_tac is not None
                               else group(region_labels(reference_name)))
    for region in REGION_GROUPS:
        tac = group(region_labels(region)) if region != reference_name else None
        if tac is not None:
            columns[region] = tac
    for index, name in atlas_labels().items():
        if index in label_tacs:
            columns[name] = label_tacs[index]
    table = pd.DataFrame(columns)
    values = table.columns[2:]
    table[values] = to_decay_corrected(table[values].to_numpy().T, timing, meta).T
    return table


def extract_tacs(pet_hmc: str, sidecar: str, atlas_pet: str, reference_mask: str,
                 reference_name: str, out_dir: str) -> str:
    """Mean decay-corrected activity per frame in the reference region, each named region group
    (bilateral) and each atlas label; BIDS layout (frame_start, frame_end in seconds)."""
    meta = json.loads(Path(sidecar).read_text())
    data = np.asarray(nib.load(pet_hmc).dataobj, dtype=np.float32)
    timing = FrameTiming.from_sidecar(meta, n_frames=data.shape[3])
    labels = np.asarray(nib.load(atlas_pet).dataobj).round().astype(int)
    ref = np.asarray(nib.load(reference_mask).dataobj) > 0.5
    label_tacs, volumes = {}, {}
    for index in np.unique(labels[labels > 0]):
        mask = labels == index
        label_tacs[int(index)] = data[mask].mean(axis=0, dtype=np.float64)
        volumes[int(index)] = float(mask.sum())
    table = tacs_table(label_tacs, volumes, data[ref].mean(axis=0, dtype=np.float64),
                       reference_name, timing, meta)
    path = str(Path(out_dir) / "tacs.tsv")
    table.to_csv(path, sep="\t", index=False, float_format="%.6g")
    return path


def fit_regions(tacs_tsv: str, sidecar: str, reference_name: str, out_dir: str,
                regions: list[str] | None = None) -> str:
    """Regional SRTM (nonlinear, bounded, multi-start; counts weights from the mean TAC) for the
    named region groups (default: all in the table that are region groups)."""
    meta = json.loads(Path(sidecar).read_text())
    table = pd.read_csv(tacs_tsv, sep="\t")
    start = table["frame_start"].to_numpy()
    timing = FrameTiming(start, table["frame_end"].to_numpy() - start)
    ref = table[reference_name].to_numpy()
    regions = regions or [r for r in REGION_GROUPS if r in table.columns and r != reference_name]
    weights = frame_weights("counts", timing, table[regions + [reference_name]].mean(axis=1)
                            .to_numpy(), meta["TracerRadionuclide"])
    rows = []
    for region in regions:
        fit = fit_srtm(timing, ref, table[region].to_numpy(), weights)
        rows.append({"region": region, "BPND": fit.bpnd, "R1": fit.r1, "k2": fit.k2_per_min,
                     "k2a": fit.k2a_per_min, "BPND_se": fit.bpnd_se, "R1_se": fit.r1_se,
                     "k2_se": fit.k2_se, "wRSS": fit.wrss, "on_bound": fit.on_bound,
                     "warnings": "; ".join(fit.warnings)})
    path = str(Path(out_dir) / "kinpar.tsv")
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False, float_format="%.6g", na_rep="n/a")
    return path


def init_tacs_wf(*, reference_region: str, name: str = "tacs_wf"):
    """Regional TACs and regional SRTM.

    Inputs: ``pet_hmc``, ``sidecar``, ``atlas_pet``, ``reference_mask``.
    Outputs: ``tacs`` (TSV), ``kinpar`` (TSV).
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "Regional time-activity curves were extracted for the reference region and every "
        "Neuromorphometrics region, and fitted with SRTM by bounded nonlinear least squares "
        "(R1 0-3, k2 0-1 /min, BPND 0-8; many starts; weights from counting statistics). ")
    inputnode = pe.Node(niu.IdentityInterface(
        fields=["pet_hmc", "sidecar", "atlas_pet", "reference_mask"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["tacs", "kinpar"]), name="outputnode")
    extract = pe.Node(niu.Function(function=_extract_node, output_names=["tacs"]),
                      name="extract", mem_gb=1)
    extract.inputs.reference_name = reference_region
    fit = pe.Node(niu.Function(function=_fit_node, output_names=["kinpar"]), name="fit")
    fit.inputs.reference_name = reference_region
    workflow.connect([
        (inputnode, extract, [("pet_hmc", "pet_hmc"), ("sidecar", "sidecar"),
                              ("atlas_pet", "atlas_pet"), ("reference_mask", "reference_mask")]),
        (inputnode, fit, [("sidecar", "sidecar")]),
        (extract, fit, [("tacs", "tacs_tsv")]),
        (extract, outputnode, [("tacs", "tacs")]),
        (fit, outputnode, [("kinpar", "kinpar")]),
    ])
    return workflow


def _extract_node(pet_hmc, sidecar, atlas_pet, reference_mask, reference_name):
    import os
    from workflows.tacs import extract_tacs
    return extract_tacs(pet_hmc, sidecar, atlas_pet, reference_mask, reference_name, os.getcwd())


def _fit_node(tacs_tsv, sidecar, reference_name):
    import os
    from workflows.tacs import fit_regions
    return fit_regions(tacs_tsv, sidecar, reference_name, os.getcwd())
