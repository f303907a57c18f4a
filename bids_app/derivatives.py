"""Derivative names (BEP023 draft) and the writer that copies a scan's results into the output
dataset, atomically, once everything is complete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bids_app import __version__
from bids_app.bids_io import write_json, write_text
from workflows.atlas import TEMPLATE_SPACE

BIDSIGNORE = "\n".join([
    "# BEP023 (PET preprocessing derivatives) names the released validator does not know yet",
    "*_mimap.nii.gz", "*_mimap.json", "*_kinpar.tsv", "*_kinpar.json", "*_tacs.tsv",
    "*_tacs.json", "*_motion.tsv", "*_motion.json", "*_petref.nii.gz", "*_petref.json",
    "*_xfm.*", "*_mask.nii.gz", "*_mask.json", "*_dseg.nii.gz", "*_dseg.json",
    "*_probseg.nii.gz", "*_probseg.json", "*_T1w.nii.gz", "*_T1w.json", "*.html",
    "figures", "logs", "group", ""])


def dataset_description(bids_dir: Path) -> dict:
    return {"Name": "petbind: BPND maps", "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "petbind", "Version": __version__,
                             "CodeURL": "https://pypi.org/project/petbind/",
                             "Container": {"Type": "docker", "Tag": f"petbind:{__version__}"}}],
            "SourceDatasets": [{"URL": f"file://{Path(bids_dir).resolve()}"}]}


def init_output_dataset(output_dir: Path, bids_dir: Path) -> None:
    """dataset_description.json and .bidsignore, written atomically (concurrent runs safe)."""
    write_json(output_dir / "dataset_description.json", dataset_description(bids_dir))
    write_text(output_dir / ".bidsignore", BIDSIGNORE)


def scan_dir(output_dir: Path, subject: str, session: str | None, datatype: str) -> Path:
    return output_dir / f"sub-{subject}" / (f"ses-{session}" if session else "") / datatype


def copy_atomic(src: str | Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


TACS_SIDECAR = {"frame_start": {"Units": "s"}, "frame_end": {"Units": "s"}}


def kinpar_sidecar(reference_region: str) -> dict:
    """Sidecar of a regional SRTM table (``_kinpar.tsv``)."""
    return {"Model": "SRTM", "ReferenceRegion": reference_region, "k2": {"Units": "1/min"},
            "Bounds": {"R1": [0, 3], "k2": [0, 1], "BPND": [0, 8]}}


def write_scan_derivatives(output_dir: str, scan_name: str, subject: str, session: str | None,
                           products: dict, provenance: dict) -> list[str]:
    """Copy one scan's products to their BEP023 names with JSON sidecars; returns the paths.

    ``products`` keys: petref, motion_tsv, reference_mask, brain_mask_pet, atlas_pet, tacs,
    kinpar, bpnd, r1, k2 (PET space), and mni_<meas>, mni_sm_<meas>, plus fit_info and
    reference_region, fwhm.
    """
    out = scan_dir(Path(output_dir), subject, session, "pet")
    base = scan_name
    ref = products["reference_region"]
    fwhm = products["fwhm"]
    written: list[str] = []

    def put(src, name, sidecar=None):
        dst = out / name
        copy_atomic(src, dst)
        written.append(str(dst))
        if sidecar is not None:
            side = dst.with_name(dst.name.split(".")[0] + ".json")
            write_json(side, {**provenance, **sidecar})
            written.append(str(side))

    put(products["petref"], f"{base}_desc-hmc_petref.nii.gz",
        {"Description": "time-weighted mean of the motion-corrected frames"})
    motion = pd.read_csv(products["motion_tsv"], sep="\t")
    put(products["motion_tsv"], f"{base}_motion.tsv",
        {"trans_x": {"Units": "mm"}, "trans_y": {"Units": "mm"}, "trans_z": {"Units": "mm"},
         "rot_x": {"Units": "rad"}, "rot_y": {"Units": "rad"}, "rot_z": {"Units": "rad"},
         "framewise_displacement": {"Units": "mm", "Description": "Power et al. 2012, 50 mm"},
         "registered": {"Description": "false: early low-count frame, transform of the first "
                        "registered frame"},
         "MaxTranslationMm": float(motion[["trans_x", "trans_y", "trans_z"]].abs().max().max()),
         "MaxRotationRad": float(motion[["rot_x", "rot_y", "rot_z"]].abs().max().max())})
    put(products["reference_mask"], f"{base}_label-{ref}_desc-reference_mask.nii.gz",
        {"Description": f"reference region ({ref}) in PET space", "Type": "ROI"})
    put(products["brain_mask_pet"], f"{base}_desc-brain_mask.nii.gz",
        {"Description": "brain mask in PET space (voxels fitted)"})
    put(products["atlas_pet"], f"{base}_seg-neuromorphometrics_dseg.nii.gz",
        {"Description": "Neuromorphometrics atlas in PET space"})
    put(products["tacs"], f"{base}_tacs.tsv",
        {**TACS_SIDECAR,
         "Description": "mean decay-corrected activity (Units of the PET image) per region"})
    put(products["kinpar"], f"{base}_model-SRTM_kinpar.tsv", kinpar_sidecar(ref))
    fit_info = json.loads(Path(products["fit_info"]).read_text())
    fit_info.pop("ReferenceTAC", None)
    units = {"BPND": "unitless", "R1": "unitless", "k2": "1/min"}
    for meas in ("BPND", "R1", "k2"):
        side = {**fit_info, "Model": "SRTM", "ReferenceRegion": ref, "Units": units[meas]}
        put(products[meas.lower()], f"{base}_model-SRTM_meas-{meas}_mimap.nii.gz", side)
        put(products[f"mni_{meas.lower()}"],
            f"{base}_space-{TEMPLATE_SPACE}_model-SRTM_meas-{meas}_mimap.nii.gz", side)
        put(products[f"mni_sm_{meas.lower()}"],
            f"{base}_space-{TEMPLATE_SPACE}_desc-sm{fwhm:g}_model-SRTM_meas-{meas}_mimap.nii.gz",
            {**side, "SmoothingFWHMmm": fwhm})
    return written


def write_pvc_derivatives(output_dir: str, scan_name: str, subject: str, session: str | None,
                          reference_region: str, psf_fwhm_mm: float,
                          resolution_mm: list[float], tacs: str, kinpar: str,
                          provenance: dict) -> list[str]:
    """The GTM partial-volume-corrected TACs and their SRTM fits (``pvc-GTM``, as PETPrep
    names partial-volume-corrected outputs). ``resolution_mm`` is the FWHM per axis (x, y, z)
    the GTM used, mean over frames: the scanner's PSF widened by the interpolation of motion
    correction."""
    out = scan_dir(Path(output_dir), subject, session, "pet")
    pvc = {"PartialVolumeCorrection": "GTM (Rousset et al. 1998)",
           "PointSpreadFunctionFWHMmm": psf_fwhm_mm,
           "PartialVolumeResolutionFWHMmm": list(resolution_mm),
           "PartialVolumeResolution": "per axis (x, y, z), mean over frames: each frame's GTM "
                                      "takes the PSF widened by the linear interpolation that "
                                      "realigned it (variance u (1 - u) times the voxel size "
                                      "squared at sub-voxel fraction u, mean over the brain)",
           "PartialVolumeRegions": "Neuromorphometrics labels, the T1w brain mask's voxels "
                                   "without a label, and the rest of the field of view; the "
                                   "reference region is its trimmed mask, the rest of its "
                                   "atlas labels regions of their own"}
    written = []
    for src, name, side in (
            (tacs, f"{scan_name}_pvc-GTM_tacs.tsv",
             {**TACS_SIDECAR,
              "Description": "partial-volume-corrected mean decay-corrected activity (Units "
                             "of the PET image) per region"}),
            (kinpar, f"{scan_name}_pvc-GTM_model-SRTM_kinpar.tsv",
             kinpar_sidecar(reference_region))):
        copy_atomic(src, out / name)
        write_json(out / name.replace(".tsv", ".json"), {**provenance, **pvc, **side})
        written.append(str(out / name))
    return written


def write_anat_derivatives(output_dir: str, subject: str, session: str | None, products: dict,
                           provenance: dict) -> list[str]:
    out = scan_dir(Path(output_dir), subject, session, "anat")
    base = f"sub-{subject}" + (f"_ses-{session}" if session else "")
    names = {"t1w_preproc": f"{base}_desc-preproc_T1w.nii.gz",
             "brain_mask": f"{base}_desc-brain_mask.nii.gz",
             "dseg": f"{base}_dseg.nii.gz",
             "gm_prob": f"{base}_label-GM_probseg.nii.gz",
             "t1w_mni": f"{base}_space-{TEMPLATE_SPACE}_desc-preproc_T1w.nii.gz"}
    written = []
    for key, name in names.items():
        copy_atomic(products[key], out / name)
        write_json(out / name.replace(".nii.gz", ".json"), provenance)
        written.append(str(out / name))
    return written


def mask_volume_ml(path: str) -> float:
    img = nib.load(path)
    return float((np.asarray(img.dataobj) > 0.5).sum() * np.prod(img.header.get_zooms()[:3])
                 / 1000)
