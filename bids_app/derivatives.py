"""The writers that copy a scan's results into the output dataset under their BIDS names
(:mod:`bids_app.names`), atomically, once everything is complete; and the output dataset's
own files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import __version__
from bids_app import names
from bids_app.bids_io import copy_atomic, write_json, write_text
from workflows.imaging.gtm import REFERENCE_GROWTH_MM
from workflows.imaging.voxel_pvc import MG_MIN_GM_FRACTION
from workflows.imaging.tacs import KINPAR_COLUMNS
from workflows.imaging.voxelwise import map_work_name, se_map_description, se_measure
from workflows.kinetics.model import PARAMETERS, ModelSettings, se_columns
from workflows.kinetics.models import get_model

BIDSIGNORE = "\n".join([
    "# BEP023 (PET preprocessing derivatives) names the released validator does not know yet",
    "*_mimap.nii.gz", "*_mimap.json", "*_kinpar.tsv", "*_kinpar.json", "*_tacs.tsv",
    "*_tacs.json", "*_motion.tsv", "*_motion.json", "*_qc.tsv", "*_qc.json",
    "*_petref.nii.gz", "*_petref.json",
    "*_xfm.*", "*_mask.nii.gz", "*_mask.json", "*_dseg.nii.gz", "*_dseg.json",
    "*_probseg.nii.gz", "*_probseg.json", "*_T1w.nii.gz", "*_T1w.json", "*.html",
    "figures", "logs", "group", ""])

TACS_SIDECAR = {"frame_start": {"Units": "s"}, "frame_end": {"Units": "s"}}
QC_SIDECAR = {
    "Description": "quality-control metrics of the scan, each against its range (set with "
                   "qc_thresholds in --config-file); a metric out of its range flags the scan",
    "metric": {"Description": "name of the metric"},
    "value": {"Description": "its value for this scan"},
    "lower": {"Description": "lowest value in range (n/a: none)"},
    "upper": {"Description": "highest value in range (n/a: none)"},
    "flagged": {"Description": "true where the value is out of range"},
    "description": {"Description": "what the metric measures"}}
REGIONAL_MODEL = "srtm"          # the model of the regional tables (_kinpar.tsv)
# the sidecars' PartialVolumeCorrection of maps fitted to frames corrected voxel by voxel
VOXELWISE_PVC = {
    "rbv": "RBV, region-based voxelwise correction (Thomas et al. 2011) of each frame on its "
           "GTM values, then the model fitted to the corrected frames",
    "mg": f"Mueller-Gaertner (1992) correction of each frame's grey matter (voxels whose "
          f"blurred grey-matter fraction is at least {MG_MIN_GM_FRACTION:g}; other voxels "
          "uncorrected), white matter, CSF and background uniform at their GTM values; then "
          "the model fitted to the corrected frames"}


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


def kinpar_sidecar(reference_region: str) -> dict:
    """Sidecar of a regional table (``_kinpar.tsv``) of the regional model."""
    model = get_model(REGIONAL_MODEL)
    return {"Model": model.label, "ReferenceRegion": reference_region,
            "k2": {"Units": PARAMETERS["k2"][0]}, **model.describe(ModelSettings()),
            **se_columns(KINPAR_COLUMNS)}


def scan_entities(scan: dict) -> names.ScanEntities:
    return names.ScanEntities(scan["subject"], scan["session"], scan["tracer"], scan["run"])


class _Writer:
    """Copies files to a scan's output folder, each with its JSON sidecar; remembers what it
    wrote."""

    def __init__(self, folder: Path, provenance: dict) -> None:
        self.folder, self.provenance, self.written = folder, provenance, []

    def put(self, src: str, name: str, sidecar: dict | None = None) -> None:
        dst = self.folder / name
        copy_atomic(src, dst)
        self.written.append(str(dst))
        if sidecar is not None:
            side = names.sidecar(dst)
            write_json(side, {**self.provenance, **sidecar})
            self.written.append(str(side))


def write_scan_derivatives(output_dir: str, scan: dict, products: dict) -> list[str]:
    """Copy one scan's products (:data:`workflows.base.SCAN_OUTPUTS` and each model's maps) to
    their BEP023 names with JSON sidecars; returns the paths. ``scan``: the record
    :func:`bids_app.participant.scan_record` makes."""
    entities = scan_entities(scan)
    ref = scan["reference_region"]
    out = _Writer(names.subject_dir(Path(output_dir), scan["subject"], scan["session"], "pet"),
                  scan["provenance"])
    out.put(products["petref"], entities.name("petref", ".nii.gz", desc="hmc"),
            {"Description": "time-weighted mean of the motion-corrected frames"})
    out.put(products["motion_tsv"], entities.name("motion", ".tsv"),
            motion_sidecar(products["motion_tsv"], scan.get("preprocessed")))
    out.put(products["reference_mask"], entities.name("mask", ".nii.gz", label=ref,
                                                      desc="reference"),
            {"Description": f"reference region ({ref}) in PET space", "Type": "ROI"})
    out.put(products["brain_mask_pet"], entities.name("mask", ".nii.gz", desc="brain"),
            {"Description": "brain mask in PET space (voxels fitted)"})
    out.put(products["atlas_pet"], entities.name("dseg", ".nii.gz", seg=names.ATLAS_SEG),
            {"Description": "Neuromorphometrics atlas in PET space"})
    out.put(products["tacs"], names.tacs_name(entities),
            {**TACS_SIDECAR,
             "Description": "mean decay-corrected activity (Units of the PET image) per region"})
    out.put(products["kinpar"], names.kinpar_name(entities, get_model(REGIONAL_MODEL).label,
                                                  seg=scan.get("regional_seg")),
            kinpar_sidecar(ref))
    out.put(products["qc"], entities.name("qc", ".tsv"), QC_SIDECAR)
    for model in scan["models"]:
        write_model_maps(out, entities, scan, model, products)
    return out.written


def write_model_maps(out: _Writer, entities: names.ScanEntities, scan: dict, model: str,
                     products: dict, pvc: str | None = None) -> None:
    """One model's maps: PET space, MNI space, MNI space smoothed; with ``pvc`` (a pvc-
    label) its maps of the frames corrected voxel by voxel."""
    kinetic = get_model(model)
    key = ("pvc_" if pvc else "") + model.replace("-", "_")
    fit_info = json.loads(Path(products[f"{key}_fit_info"]).read_text())
    fwhm = scan["smoothing_fwhm_mm"]
    for i, meas in enumerate(kinetic.maps):
        units, description = PARAMETERS[meas]
        side = {**fit_info, "Model": kinetic.label, "ReferenceRegion": scan["reference_region"],
                "Units": units, "Description": description}
        out.put(products[f"{key}_maps"][i], names.map_name(entities, kinetic.label, meas,
                                                           pvc=pvc), side)
        out.put(products[f"{key}_mni"][i],
                names.map_name(entities, kinetic.label, meas, space=names.TEMPLATE_SPACE,
                               pvc=pvc), side)
        out.put(products[f"{key}_mni_smoothed"][i],
                names.map_name(entities, kinetic.label, meas, space=names.TEMPLATE_SPACE,
                               desc=names.smoothing_desc(fwhm), pvc=pvc),
                {**side, "SmoothingFWHMmm": fwhm})
    # standard errors in PET space only: warping and smoothing would not carry them
    se_maps = {Path(path).name: path for path in products.get(f"{key}_se_maps") or []}
    for meas in kinetic.maps:
        work = map_work_name(kinetic.label, se_measure(meas))
        if work in se_maps:
            out.put(se_maps[work], names.map_name(entities, kinetic.label, se_measure(meas),
                                                  pvc=pvc),
                    {**fit_info, "Model": kinetic.label,
                     "ReferenceRegion": scan["reference_region"], **se_map_description(meas)})


def motion_sidecar(motion_tsv: str, preprocessed: dict | None = None) -> dict:
    """The motion table's columns and largest values; for PET realigned elsewhere
    (``preprocessed``: the scan record's), whose estimates they are (null where not given)."""
    motion = pd.read_csv(motion_tsv, sep="\t", na_values=["n/a"])
    largest = {"MaxTranslationMm": motion[["trans_x", "trans_y", "trans_z"]].abs().max().max(),
               "MaxRotationRad": motion[["rot_x", "rot_y", "rot_z"]].abs().max().max()}
    registered = ("false: early low-count frame, transform of the first registered frame"
                  if preprocessed is None else
                  f"true: realigned by {preprocessed['source']}; these are its estimates "
                  f"({preprocessed['confounds']})" if preprocessed["confounds"] else
                  f"false: realigned by {preprocessed['source']}, which gave no estimates")
    return {"trans_x": {"Units": "mm"}, "trans_y": {"Units": "mm"}, "trans_z": {"Units": "mm"},
            "rot_x": {"Units": "rad"}, "rot_y": {"Units": "rad"}, "rot_z": {"Units": "rad"},
            "framewise_displacement": {"Units": "mm",
                                       "Description": "Power et al. 2012, 50 mm"},
            "registered": {"Description": registered},
            **{k: float(v) if np.isfinite(v) else None for k, v in largest.items()}}


def write_pvc_derivatives(output_dir: str, scan: dict, products: dict) -> list[str]:
    """The GTM partial-volume-corrected TACs and their SRTM fits (``pvc-GTM``, as PETPrep
    names partial-volume-corrected outputs). ``pvc_resolution_mm`` is the FWHM per axis
    (x, y, z) the GTM used, mean over frames: the scanner's PSF widened by the interpolation of
    motion correction."""
    entities = scan_entities(scan)
    pvc = {"PartialVolumeCorrection": "GTM (Rousset et al. 1998)",
           "PointSpreadFunctionFWHMmm": scan["pvc_psf_fwhm_mm"],
           "PartialVolumeResolutionFWHMmm": list(products["pvc_resolution_mm"]),
           "PartialVolumeResolution": "per axis (x, y, z), mean over frames: each frame's GTM "
                                      "takes the PSF widened by the cubic B-spline resampling "
                                      "that realigned it (the variance of the Gaussian that "
                                      "spills as much activity across an edge as resampling at "
                                      "sub-voxel fraction u, mean over the brain)",
           "PartialVolumeRegions": "Neuromorphometrics labels, the T1w brain mask's voxels "
                                   "without a label, and the rest of the field of view; the "
                                   "reference region is its trimmed mask grown by "
                                   f"{REFERENCE_GROWTH_MM:g} mm within its atlas labels, the "
                                   "rest of those labels regions of their own"}
    out = _Writer(names.subject_dir(Path(output_dir), scan["subject"], scan["session"], "pet"),
                  {**scan["provenance"], **pvc})
    out.put(products["pvc_tacs"], names.tacs_name(entities, pvc="GTM"),
            {**TACS_SIDECAR,
             "Description": "partial-volume-corrected mean decay-corrected activity (Units "
                            "of the PET image) per region"})
    out.put(products["pvc_kinpar"],
            names.kinpar_name(entities, get_model(REGIONAL_MODEL).label, pvc="GTM",
                              seg=scan.get("regional_seg")),
            kinpar_sidecar(scan["reference_region"]))
    method = scan.get("pvc_method", "gtm")
    if method != "gtm":
        maps = _Writer(out.folder, {**scan["provenance"], **pvc,
                                    "PartialVolumeCorrection": VOXELWISE_PVC[method]})
        for model in scan["models"]:
            write_model_maps(maps, entities, scan, model, products, pvc=method.upper())
        out.written += maps.written
    return [p for p in out.written if not p.endswith(".json")]


def write_regional_derivatives(output_dir: str, scan: dict, products: dict) -> list[str]:
    """A TAC table made elsewhere (PETPrep) in petbind's layout and every model's regional fits,
    named with the table's seg- and pvc- labels; sidecars name the sources, the reference's
    labels, the time shift and the regions left out. ``scan``: the record of
    :func:`bids_app.petprep.check_tac_scan` with the table's record under ``table``."""
    from workflows.regional import node_key, regional_models

    entities = scan_entities(scan)
    table, reference = scan["table"], scan["reference"]
    common = {"ReferenceRegion": reference["name"], "ReferenceLabels": reference["labels"],
              "ReferenceWeighting": reference["weighting"],
              "InjectionStartS": table["shift_s"],
              "TimeOrigin": "injection: the source's times (from TimeZero) minus InjectionStart",
              "RegionsLeftOut": table["left_out"]}
    out = _Writer(names.subject_dir(Path(output_dir), scan["subject"], scan["session"], "pet"),
                  {**scan["provenance"], "Sources": [
                      table["path"], *([table["reference_file"]] if table.get("reference_file")
                                       else []), *scan["provenance"]["Sources"][-1:]],
                   **common})
    pvc = table["pvc"]
    out.put(products["tacs"], entities.name("tacs", ".tsv", seg=scan["seg"], pvc=pvc),
            {**TACS_SIDECAR, "Description": "decay-corrected mean activity per region, times "
                                            "from injection"})
    for model in regional_models():
        kinpar = products[f"{node_key(model)}_kinpar"]
        info = json.loads(Path(kinpar).with_suffix(".json").read_text())
        out.put(kinpar, names.kinpar_name(entities, get_model(model).label, pvc=pvc),
                {**info, "k2": {"Units": PARAMETERS["k2"][0]}, **se_columns(KINPAR_COLUMNS)})
    # QC of the uncorrected fits (the share of SRTM on a bound), unless the scan's image route
    # writes the scan's QC
    if pvc is None and not scan.get("with_image"):
        from workflows.imaging.qc import qc_table, thresholds_with

        srtm = pd.read_csv(products["srtm_kinpar"], sep="\t")
        qc = qc_table({"regions_on_bound_fraction": float(srtm["on_bound"].astype(bool)
                                                          .mean())},
                      thresholds_with(scan["qc_thresholds"]))
        path = out.folder / entities.name("qc", ".tsv")
        write_text(path, qc.to_csv(sep="\t", index=False, float_format="%.6g", na_rep="n/a"))
        write_json(names.sidecar(path), QC_SIDECAR)
        out.written += [str(path)]
    return [p for p in out.written if not p.endswith(".json")]


ANAT_PRODUCTS = {"t1w_preproc": ("T1w", {"desc": "preproc"}),
                 "brain_mask": ("mask", {"desc": "brain"}),
                 "dseg": ("dseg", {}),
                 "gm_prob": ("probseg", {"label": "GM"}),
                 "t1w_mni": ("T1w", {"space": names.TEMPLATE_SPACE, "desc": "preproc"})}


def write_anat_derivatives(output_dir: str, scan: dict, products: dict) -> list[str]:
    """The T1w's products (:data:`ANAT_PRODUCTS`) with their sidecars."""
    out = _Writer(names.subject_dir(Path(output_dir), scan["subject"], scan["session"], "anat"),
                  {})
    for key, (suffix, entities) in ANAT_PRODUCTS.items():
        out.put(products[key], names.anat_name(scan["subject"], scan["session"], suffix,
                                               **entities), {"SoftwareName": "petbind"})
    return [p for p in out.written if not p.endswith(".json")]

