"""Voxelwise SRTM (basis functions) in PET space: BPND, R1 and k2 maps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.kinetics.frames import FrameTiming, to_decay_corrected
from workflows.kinetics.srtm_bfm import SRTMResult, fit_srtm_bfm, make_basis_set
from workflows.kinetics.weights import frame_weights

MAPS = {  # meas label -> (SRTMResult attribute, units, description)
    "BPND": ("bpnd", "unitless", "non-displaceable binding potential"),
    "R1": ("r1", "unitless", "relative delivery K1/K1'"),
    "k2": ("k2_per_min", "1/min", "efflux rate constant of the target region"),
}


class EmptyReferenceError(ValueError):
    """The reference TAC is zero in every frame."""


@dataclass
class VoxelwiseFit:
    result: SRTMResult
    brain: np.ndarray            # boolean mask of fitted voxels
    weights: np.ndarray
    reference_tac: np.ndarray


def fit_image(data: np.ndarray, sidecar: dict, reference: np.ndarray, brain: np.ndarray,
              k2a_range: tuple[float, float], n_bases: int = 300,
              weights: str = "counts") -> VoxelwiseFit:
    """Fit every voxel of ``brain`` in a 4D array (x, y, z, frames) whose state the BIDS
    ``sidecar`` describes; ``reference`` is a boolean mask. Counts-based weights come from the mean
    TAC of the fitted voxels."""
    timing = FrameTiming.from_sidecar(sidecar, n_frames=data.shape[3])
    tacs = to_decay_corrected(data[brain].astype(np.float64), timing, sidecar)
    tacs = np.nan_to_num(tacs, nan=0.0, posinf=0.0, neginf=0.0)
    ref_tac = to_decay_corrected(data[reference].astype(np.float64).mean(axis=0), timing,
                                 sidecar)
    if not np.all(np.isfinite(ref_tac)) or not np.any(ref_tac > 0):
        raise EmptyReferenceError("the reference TAC is zero or not finite in every frame")
    w = frame_weights(weights, timing, tacs.mean(axis=0), sidecar.get("TracerRadionuclide"))
    result = fit_srtm_bfm(tacs, make_basis_set(timing, ref_tac, w, k2a_range, n_bases))
    return VoxelwiseFit(result, brain, w, ref_tac)


def write_maps(fit: VoxelwiseFit, affine: np.ndarray, prefix: str, sidecar: dict
               ) -> dict[str, str]:
    """``<prefix>_model-SRTM_meas-<M>_mimap.nii.gz`` (+ JSON) for BPND, R1, k2; 0 outside the
    fitted voxels. Returns meas -> path."""
    out = {}
    for meas, (attr, units, description) in MAPS.items():
        volume = np.zeros(fit.brain.shape, dtype=np.float32)
        volume[fit.brain] = getattr(fit.result, attr)
        path = Path(f"{prefix}_model-SRTM_meas-{meas}_mimap.nii.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        img = nib.Nifti1Image(volume, affine)
        img.header.set_xyzt_units("mm")
        nib.save(img, path)
        path.with_name(path.name.removesuffix(".nii.gz") + ".json").write_text(json.dumps(
            {**sidecar, "Description": description, "Units": units}, indent=2) + "\n")
        out[meas] = str(path)
    return out


def fit_maps(pet_hmc: str, sidecar: str, reference_mask: str, brain_mask: str,
             k2a_range: list[float], n_bases: int, out_dir: str) -> tuple[str, str, str, str]:
    """Node function: maps in PET space and a JSON of fit settings and QC."""
    meta = json.loads(Path(sidecar).read_text())
    img = nib.load(pet_hmc)
    data = np.asarray(img.dataobj, dtype=np.float32)
    reference = np.asarray(nib.load(reference_mask).dataobj) > 0.5
    brain = np.asarray(nib.load(brain_mask).dataobj) > 0.5
    fit = fit_image(data, meta, reference, brain, tuple(k2a_range), n_bases)
    info = {"Theta3RangePerMin": list(k2a_range), "NumberOfBases": n_bases,
            "Theta3Spacing": "log", "Weights": "counts",
            "FrameWeights": [round(float(w), 6) for w in fit.weights],
            "NumberOfVoxels": int(brain.sum()),
            "FractionOfVoxelsOnTheta3Bound": float(fit.result.on_bound.mean())}
    paths = write_maps(fit, img.affine, str(Path(out_dir) / "pet"), info)
    info_path = Path(out_dir) / "fit_info.json"
    info_path.write_text(json.dumps({**info, "ReferenceTAC": fit.reference_tac.tolist()}))
    return paths["BPND"], paths["R1"], paths["k2"], str(info_path)


def init_voxelwise_wf(*, k2a_range: tuple[float, float], n_bases: int = 300,
                      mem_gb: float = 2.0, name: str = "voxelwise_wf"):
    """Voxelwise SRTM by basis functions in PET space.

    Inputs: ``pet_hmc``, ``sidecar``, ``reference_mask``, ``brain_mask``.
    Outputs: ``bpnd``, ``r1``, ``k2`` (PET space), ``fit_info`` (JSON).
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        f"BPND, R1 and k2 were estimated voxel by voxel with the basis-function method of SRTM "
        f"({n_bases} log-spaced bases, theta3 {k2a_range[0]:.3f}-{k2a_range[1]:.3f} /min on "
        "decay-corrected data, exact frame-integrated convolution, weights from counting "
        "statistics). ")
    inputnode = pe.Node(niu.IdentityInterface(
        fields=["pet_hmc", "sidecar", "reference_mask", "brain_mask"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["bpnd", "r1", "k2", "fit_info"]),
                         name="outputnode")
    node = pe.Node(niu.Function(function=_fit_node,
                                output_names=["bpnd", "r1", "k2", "fit_info"]),
                   name="srtm_bfm", mem_gb=mem_gb)
    node.inputs.k2a_range = list(k2a_range)
    node.inputs.n_bases = n_bases
    workflow.connect([
        (inputnode, node, [("pet_hmc", "pet_hmc"), ("sidecar", "sidecar"),
                           ("reference_mask", "reference_mask"), ("brain_mask", "brain_mask")]),
        (node, outputnode, [("bpnd", "bpnd"), ("r1", "r1"), ("k2", "k2"),
                            ("fit_info", "fit_info")]),
    ])
    return workflow


def _fit_node(pet_hmc, sidecar, reference_mask, brain_mask, k2a_range, n_bases):
    import os
    from workflows.voxelwise import fit_maps
    return fit_maps(pet_hmc, sidecar, reference_mask, brain_mask, k2a_range, n_bases,
                    os.getcwd())
