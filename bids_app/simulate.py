"""petbind-simulate: a BIDS PET dataset of digital phantoms, with its truth.

Per subject: anatomy (the MNI152NLin2009cAsym template and the Neuromorphometrics atlas deformed by
a random affine and a smooth warp), a T1w head image, regional receptor truth per tracer (with
between-subject variability, group, age and sex effects), and dynamic PET from kinetics (plasma
input, one-tissue reference region, SRTM or two-tissue targets), the seed study's frame
protocols, scanner PSF, head motion and count-dependent noise. The truth goes to
OUT_DIR/derivatives/truth/.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import __version__, names
from bids_app.bids_io import write_json, write_nifti, write_text, write_tsv
from bids_app.tracers import lookup_tracer
from workflows.imaging.atlas import REGION_GROUPS, Grid, region_labels
from workflows.kinetics.frames import SEED_PROTOCOLS, FrameTiming
from workflows.kinetics.models import get_model
from workflows.simulation.anatomy import DEFACE_MARGIN_MM, SubjectWarp
from workflows.simulation.pet import KineticSettings
from workflows.simulation.phantom import (Anatomy, Atlas, ScanPhantom, anatomy_from_t1w,
                                          make_anatomy, mni_output_grid, native_map_to_mni,
                                          simulate_scan, simulated_estimate, to_output_grid)
from workflows.simulation.receptors import (PATTERNS, bpnd_map, subject_regional_bpnd,
                                           with_session_variation)

BIDS_VERSION = "1.10.0"
SM_FWHM_MM = 8.0
PV_MATCHED = "pvmatched"   # desc- of the truth a perfect pipeline without PVC would estimate
DEFAULT_MODEL = "srtm-bfm"      # the participant level's default voxelwise model
TEMPLATE_SPACE = names.TEMPLATE_SPACE


@dataclass
class SimulationConfig:
    out_dir: Path
    groups: dict[str, int]
    group_column: str = "group"
    tracers: list[str] = field(default_factory=lambda: ["carfentanil"])
    effects: dict[str, float] = field(default_factory=dict)
    motion_mm: float = 1.0
    noise: float = 0.1
    voxel_mm: float = 2.0
    t1_voxel_mm: float = 1.5
    psf_fwhm_mm: float = 2.5
    sessions: list[str] = field(default_factory=list)
    occupancy: float = 0.0
    exposure_column: str | None = None     # sessions.tsv column of each session's exposure
    ec50: float | None = None              # exposure giving half occupancy (Omax 1)
    exposure_range: tuple[float, float] = (0.25, 4.0)   # participants' exposures / EC50
    retest_cv: float = 0.0                 # within-subject CV of BPND between sessions
    seed: int = 0
    target_model: str = "srtm"
    k4_per_min: float = 0.5
    age_effect_per_decade: float = 0.0
    sex_effect: float = 0.0
    derivatives_only: bool = False
    derivatives_noise: float = 0.15
    t1w: Path | None = None
    skull_stripped: bool = False    # T1w written as brain only (zero outside the truth mask)
    defaced: bool = False           # T1w with the face removed, as shared datasets are
    deface_margin_mm: float = DEFACE_MARGIN_MM   # how close to the brain the face is removed
    petprep_layout: bool = False    # also derivatives/petprep/, as PETPrep would write them

    @property
    def n_subjects(self) -> int:
        return sum(self.groups.values())


def subject_ids(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"{i:0{width}d}" for i in range(1, n + 1)]


def participants_table(cfg: SimulationConfig, rng: np.random.Generator) -> pd.DataFrame:
    groups = [g for g, n in cfg.groups.items() for _ in range(n)]
    n = len(groups)
    return pd.DataFrame({
        "participant_id": [f"sub-{s}" for s in subject_ids(n)],
        cfg.group_column: groups,
        "age": np.round(rng.uniform(20, 50, n), 1),
        "sex": rng.choice(["M", "F"], n),
    })


def exposures(cfg: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Each participant's exposure in the sessions after the first: log-spaced over
    ``exposure_range`` x EC50, in random order (NaN without --ec50)."""
    if cfg.ec50 is None:
        return np.full(cfg.n_subjects, np.nan)
    lo, hi = cfg.exposure_range
    return rng.permutation(np.round(np.geomspace(lo, hi, cfg.n_subjects) * cfg.ec50, 4))


def session_occupancy(cfg: SimulationConfig, ses_index: int, exposure: float) -> float:
    """The fraction of receptors blocked in a session: none in the first, then
    ``exposure / (exposure + EC50)`` with --ec50, else --occupancy."""
    if ses_index == 0:
        return 0.0
    return exposure / (exposure + cfg.ec50) if cfg.ec50 is not None else cfg.occupancy


def participants_json(cfg: SimulationConfig) -> dict:
    return {
        cfg.group_column: {"Description": f"group ({cfg.group_column}) of the participant",
                           "Levels": {g: g for g in cfg.groups}},
        "age": {"Description": "age at the PET scan", "Units": "year"},
        "sex": {"Description": "sex", "Levels": {"M": "male", "F": "female"}},
    }


def pet_sidecar(tracer: str, timing: FrameTiming, injected_mbq: float, psf_fwhm_mm: float
                ) -> dict:
    info = lookup_tracer(tracer)
    return {
        "Manufacturer": "petbind-simulate", "ManufacturersModelName": "digital phantom",
        "Units": "Bq/mL", "BodyPart": "Brain",
        "TracerName": tracer, "TracerRadionuclide": info.radionuclide,
        "InjectedRadioactivity": round(injected_mbq, 3), "InjectedRadioactivityUnits": "MBq",
        "InjectedMass": 1.0, "InjectedMassUnits": "ug",
        "SpecificRadioactivity": round(injected_mbq, 3), "SpecificRadioactivityUnits": "MBq/ug",
        "ModeOfAdministration": "bolus", "TimeZero": "10:00:00", "ScanStart": 0,
        "InjectionStart": 0, "FrameTimesStart": timing.start_s.tolist(),
        "FrameDuration": timing.duration_s.tolist(), "AcquisitionMode": "list mode",
        "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 0,
        "ReconMethodName": "simulated (Gaussian PSF)", "ReconMethodParameterLabels": ["none"],
        "ReconMethodParameterUnits": ["none"], "ReconMethodParameterValues": [0],
        "ReconFilterType": "Gaussian", "ReconFilterSize": psf_fwhm_mm,
        "AttenuationCorrection": "none needed (simulated)",
    }


def dataset_description(name: str, derivative: bool = False) -> dict:
    out = {"Name": name, "BIDSVersion": BIDS_VERSION,
           "DatasetType": "derivative" if derivative else "raw", "License": "CC0",
           "GeneratedBy": [{"Name": "petbind-simulate", "Version": __version__}]}
    return out


def simulate(cfg: SimulationConfig, log=print) -> None:
    """Write the dataset and its truth under ``cfg.out_dir``."""
    root = Path(cfg.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(cfg.seed)
    table_rng, *subject_seeds = [np.random.default_rng(s) for s in seeds.spawn(cfg.n_subjects + 1)]
    participants = participants_table(cfg, table_rng)
    doses = dict(zip(participants["participant_id"], exposures(cfg, table_rng)))
    write_json(root / "dataset_description.json",
               dataset_description("petbind simulated PET dataset"))
    write_tsv(root / "participants.tsv", participants)
    write_json(root / "participants.json", participants_json(cfg))
    write_text(root / "README", readme_text(cfg))
    truth_root = root / "derivatives" / "truth"
    write_json(truth_root / "dataset_description.json",
               dataset_description("petbind-simulate ground truth", derivative=True))
    write_json(truth_root / "simulation.json", config_record(cfg))
    if cfg.derivatives_only:
        deriv_root = root / "derivatives" / "petbind"
        write_json(deriv_root / "dataset_description.json",
                   {**dataset_description("petbind (simulated participant level)", True),
                    "SourceDatasets": [{"URL": "file://../.."}]})

    if cfg.petprep_layout:
        write_json(root / "derivatives" / "petprep" / "dataset_description.json", {
            **dataset_description("PETPrep-style derivatives (petbind-simulate)", True),
            "GeneratedBy": [{"Name": "PETPrep", "Version": "simulated",
                             "Description": "petbind-simulate --petprep-layout: perfect motion "
                             "correction, the true anatomy in FreeSurfer's names"}]})
    atlas = Atlas()
    rows: list[dict] = []
    # scratch: registrations of a given T1w (--t1w), used until the person's last scan is written
    with tempfile.TemporaryDirectory(prefix="petbind-simulate-") as scratch:
        for (_, person), rng in zip(participants.iterrows(), subject_seeds):
            rows += simulate_person(cfg, root, truth_root, atlas, person,
                                    doses[person["participant_id"]], rng, Path(scratch), log)
    write_tsv(truth_root / "regional_bpnd.tsv", pd.DataFrame(rows))
    if cfg.sessions:
        write_tsv(truth_root / "occupancy.tsv", pd.DataFrame(
            [{"participant_id": sub, "session": ses,
              "exposure": 0.0 if i == 0 or cfg.ec50 is None else dose,
              "occupancy": session_occupancy(cfg, i, dose)}
             for sub, dose in doses.items() for i, ses in enumerate(cfg.sessions)]))


def simulate_person(cfg: SimulationConfig, root: Path, truth_root: Path, atlas: Atlas,
                    person: pd.Series, exposure: float, rng: np.random.Generator,
                    scratch: Path, log=print) -> list[dict]:
    """One participant's anatomy and scans (every session and tracer) and their truth; returns
    the rows of the regional truth table. ``exposure``: the dose in the sessions after the
    first (NaN: none)."""
    out_grid = mni_output_grid()
    sub = person["participant_id"].removeprefix("sub-")
    in_effect_group = person[cfg.group_column] != next(iter(cfg.groups))
    anatomy = None if cfg.derivatives_only else make_subject_anatomy(cfg, atlas, rng,
                                                                      scratch)
    if cfg.exposure_column and cfg.sessions:
        write_tsv(root / f"sub-{sub}" / f"sub-{sub}_sessions.tsv", pd.DataFrame({
            "session_id": [f"ses-{s}" for s in cfg.sessions],
            cfg.exposure_column: [0.0] + [exposure] * (len(cfg.sessions) - 1)}))
        write_json(root / f"sub-{sub}" / f"sub-{sub}_sessions.json", {cfg.exposure_column: {
            "Description": "exposure to the blocking drug in the session (dose or plasma "
            f"concentration, in the units of EC50 = {cfg.ec50:g}); 0 at baseline"}})
    rows = []
    for ses_index, ses in enumerate(cfg.sessions or [None]):
        occupancy = session_occupancy(cfg, ses_index, exposure)
        if anatomy is not None:
            write_anatomy(cfg, root, truth_root, sub, ses, anatomy)
        for tracer in cfg.tracers:
            log(f"petbind-simulate: sub-{sub}" + (f" ses-{ses}" if ses else "") +
                f" trc-{tracer}")
            pattern = PATTERNS[tracer]
            # the same person has the same receptors in every session: seed by subject+tracer
            receptor_rng = np.random.default_rng(
                [cfg.seed, int(sub), cfg.tracers.index(tracer)])
            receptors = subject_regional_bpnd(
                pattern, receptor_rng, cfg.effects, in_effect_group, person["age"],
                cfg.age_effect_per_decade, person["sex"] == "F", cfg.sex_effect,
                occupancy=occupancy)
            if cfg.retest_cv:
                receptors = with_session_variation(receptors, cfg.retest_cv, np.random.default_rng(
                    [cfg.seed, int(sub), cfg.tracers.index(tracer), ses_index, 1]))
            bp_atlas = bpnd_map(atlas.labels, receptors, atlas.voxel_mm, receptor_rng)
            bp_mni = to_output_grid(bp_atlas, atlas, out_grid)
            scan = names.ScanEntities(sub, ses, tracer)
            write_nifti(names.scan_file(truth_root, scan, "mimap", ".nii.gz",
                                        space=TEMPLATE_SPACE, meas="BPND"),
                        bp_mni, out_grid.affine)
            for region in REGION_GROUPS:
                mask = np.isin(atlas.labels, region_labels(region))
                rows.append({"participant_id": f"sub-{sub}", "session": ses or "n/a",
                             "tracer": tracer, "region": region,
                             "BPND": float(bp_atlas[mask].mean()),
                             "group": person[cfg.group_column]})
            if cfg.derivatives_only:
                write_fast_derivatives(cfg, root, scan, bp_mni, out_grid, rng)
            else:
                write_pet(cfg, root, truth_root, scan, anatomy, atlas, bp_atlas, rng)
    return rows


def make_subject_anatomy(cfg: SimulationConfig, atlas: Atlas, rng: np.random.Generator,
                         scratch: Path) -> Anatomy:
    if cfg.t1w is not None:
        return anatomy_from_t1w(cfg.t1w, atlas, scratch, cfg.seed, cfg.voxel_mm, cfg.defaced,
                                cfg.deface_margin_mm)
    return make_anatomy(atlas, rng, cfg.t1_voxel_mm, cfg.voxel_mm, defaced=cfg.defaced,
                        deface_margin_mm=cfg.deface_margin_mm)


def write_anatomy(cfg: SimulationConfig, root: Path, truth_root: Path, sub: str,
                  ses: str | None, anatomy: Anatomy) -> None:
    anat, truth = (names.subject_dir(r, sub, ses, "anat") for r in (root, truth_root))
    t1 = np.where(anatomy.brain_t1, anatomy.t1, 0) if cfg.skull_stripped else anatomy.t1
    write_nifti(anat / names.anat_name(sub, ses, "T1w"), t1, anatomy.t1_grid.affine)
    write_json(anat / names.anat_name(sub, ses, "T1w", ".json"),
               {"Manufacturer": "petbind-simulate", "MagneticFieldStrength": 3,
                "Description": "synthetic T1w: MNI152NLin2009cAsym brain deformed, " +
                ("skull-stripped" if cfg.skull_stripped else
                 f"with head, face removed up to {cfg.deface_margin_mm:g} mm from the brain"
                 if cfg.defaced else "with head, face and neck")})
    write_nifti(truth / names.anat_name(sub, ses, "mask", desc="brain"),
                anatomy.brain_t1.astype(np.uint8), anatomy.t1_grid.affine, dtype=np.uint8)
    write_nifti(truth / names.anat_name(sub, ses, "dseg", seg=names.ATLAS_SEG),
                anatomy.labels_t1.astype(np.int16), anatomy.t1_grid.affine, dtype=np.int16)
    if isinstance(anatomy.warp, SubjectWarp):
        write_json(truth / names.anat_name(sub, ses, "xfm", ".json", from_="T1w",
                                           to=TEMPLATE_SPACE, mode="points"),
                   {"Description": "native (scanner mm) to MNI: x_mni = A x + d(x); A below, d "
                    "a smooth displacement (SD about 2 mm) on control points",
                    "Affine": anatomy.warp.affine.tolist()})


def write_pet(cfg: SimulationConfig, root: Path, truth_root: Path, scan: names.ScanEntities,
              anatomy: Anatomy, atlas: Atlas, bp_atlas: np.ndarray,
              rng: np.random.Generator) -> None:
    """One scan (:func:`simulate_scan`): the PET image and sidecar, and its truth."""
    tracer = scan.tracer
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS.get(tracer, SEED_PROTOCOLS["madam"]))
    reference = PATTERNS[tracer].reference_region
    phantom = simulate_scan(anatomy, atlas, bp_atlas, timing,
                            KineticSettings(target_model=cfg.target_model,
                                            k4_per_min=cfg.k4_per_min),
                            reference, lookup_tracer(tracer).radionuclide, cfg.motion_mm,
                            cfg.psf_fwhm_mm, cfg.noise, rng, motion_corrected=cfg.petprep_layout,
                            theta3_range_per_min=lookup_tracer(tracer).k2a_range_per_min())
    affine = anatomy.pet_grid.affine
    sidecar = pet_sidecar(tracer, timing, 400.0 * phantom.dose, cfg.psf_fwhm_mm)
    write_nifti(names.scan_file(root, scan, "pet", ".nii.gz"), phantom.pet, affine)
    write_json(names.scan_file(root, scan, "pet", ".json"), sidecar)
    if cfg.petprep_layout:
        write_petprep(root / "derivatives" / "petprep", scan, anatomy, phantom, sidecar)

    def truth(suffix: str, extension: str = ".nii.gz", **entities: str) -> Path:
        return names.scan_file(truth_root, scan, suffix, extension, **entities)

    write_nifti(truth("mimap", meas="BPND"), phantom.bpnd, affine)
    # the PV-matched truth: what a perfect pipeline without PVC would estimate
    out_grid = mni_output_grid()
    write_nifti(truth("mimap", desc=PV_MATCHED, meas="BPND"), phantom.bpnd_pv, affine)
    write_nifti(truth("mimap", space=TEMPLATE_SPACE, desc=PV_MATCHED, meas="BPND"),
                native_map_to_mni(phantom.bpnd_pv, anatomy.pet_grid, anatomy.warp, out_grid,
                                  to_output_grid(atlas.labels, atlas, out_grid, order=0) > 0),
                out_grid.affine)
    write_nifti(truth("mask", label=reference, desc="reference"),
                phantom.reference_mask.astype(np.uint8), affine, dtype=np.uint8)
    write_nifti(truth("dseg", seg=names.ATLAS_SEG), anatomy.labels_pet.astype(np.int16),
                affine, dtype=np.int16)
    write_nifti(truth("dseg", seg=names.ATLAS_SEG, desc="fine"), phantom.labels_fine,
                phantom.fine_grid.affine, dtype=np.int16)
    write_nifti(truth("mask", desc="brain"), (anatomy.labels_pet > 0).astype(np.uint8), affine,
                dtype=np.uint8)
    write_tsv(truth("motion", ".tsv", desc="truth"), pd.DataFrame(
        phantom.motion, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]))
    write_json(truth("motion", ".json", desc="truth"), {
        "Description": "head pose per frame: x -> R (x - c) + c + t, R = Rz Ry Rx, RAS mm; "
        "the frame shows the head moved by this pose relative to frame 0",
        "RotationCentreMm": phantom.pose_centre_mm.tolist(),
        "trans_x": {"Units": "mm"}, "rot_x": {"Units": "rad"}})


def write_petprep(root: Path, scan: names.ScanEntities, anatomy: Anatomy,
                  phantom: ScanPhantom, sidecar: dict) -> None:
    """One scan as PETPrep would leave it, perfectly preprocessed: the motion-free PET in T1w
    space (the phantom's PET grid lies in the T1w's world), the head motion it undid (the
    confounds table), its brain mask, the true anatomy as
    a FreeSurfer-named segmentation (``seg-gtm``; :mod:`workflows.simulation.freesurfer`) with
    its volumes, and the regional TACs from it, times in seconds from TimeZero as the raw
    sidecar's."""
    from workflows.imaging.atlas import atlas_labels
    from workflows.imaging.motion import framewise_displacement
    from workflows.imaging.preprocessed import MOTION_COLUMNS
    from workflows.simulation.freesurfer import freesurfer_segmentation

    pet_dir = names.subject_dir(root, scan.subject, scan.session, "pet")
    anat_dir = names.subject_dir(root, scan.subject, scan.session, "anat")
    stem, anat_stem = scan.prefix, names.filename("", "", sub=scan.subject, ses=scan.session)
    affine = anatomy.pet_grid.affine
    write_nifti(pet_dir / f"{stem}_space-T1w_desc-preproc_pet.nii.gz", phantom.pet_corrected,
                affine)
    write_json(pet_dir / f"{stem}_space-T1w_desc-preproc_pet.json",
               {**sidecar, "Description": "motion-corrected PET in T1w space (simulated)"})
    write_nifti(pet_dir / f"{stem}_space-T1w_desc-brain_mask.nii.gz",
                (anatomy.labels_pet > 0).astype(np.uint8), affine, dtype=np.uint8)
    segmentation, regions = freesurfer_segmentation(anatomy.labels_t1, atlas_labels())
    write_nifti(anat_dir / f"{anat_stem}_seg-gtm_dseg.nii.gz", segmentation.astype(np.int16),
                anatomy.t1_grid.affine, dtype=np.int16)
    write_tsv(anat_dir / f"{anat_stem}_seg-gtm_dseg.tsv",
              pd.DataFrame({"index": list(regions), "name": list(regions.values())}))
    voxel_mm3 = abs(np.linalg.det(anatomy.t1_grid.affine[:3, :3]))
    write_tsv(anat_dir / f"{anat_stem}_desc-preproc_seg-gtm_morph.tsv", pd.DataFrame({
        "index": list(regions), "name": list(regions.values()),
        "volume-mm3": [float((segmentation == i).sum() * voxel_mm3) for i in regions]}))
    on_pet, pet_regions = freesurfer_segmentation(anatomy.labels_pet, atlas_labels())
    frames = phantom.pet_corrected.reshape(-1, phantom.pet_corrected.shape[3])
    flat = on_pet.reshape(-1)
    timing = phantom.timing
    tacs = pd.DataFrame({"frame_start": timing.start_s, "frame_end": timing.end_s})
    for index, name in pet_regions.items():
        tacs[name] = frames[flat == index].mean(axis=0, dtype=np.float64)
    write_tsv(pet_dir / f"{stem}_desc-preproc_seg-gtm_tacs.tsv", tacs)
    write_json(pet_dir / f"{stem}_desc-preproc_seg-gtm_tacs.json", {
        "frame_start": {"Units": "s", "Description": "from TimeZero"},
        "frame_end": {"Units": "s", "Description": "from TimeZero"},
        "Units": sidecar.get("Units", "Bq/mL"),
        "Description": "mean of the motion-corrected PET in each region (simulated)"})
    # the head motion that perfect realignment undid, as PETPrep's confounds table gives it
    motion = pd.DataFrame(phantom.motion, columns=list(MOTION_COLUMNS))
    motion["framewise_displacement"] = framewise_displacement(phantom.motion)
    write_tsv(pet_dir / f"{stem}_desc-confounds_timeseries.tsv", motion)
    write_json(pet_dir / f"{stem}_desc-confounds_timeseries.json", {
        **{c: {"Units": "mm"} for c in ("trans_x", "trans_y", "trans_z",
                                        "framewise_displacement")},
        **{c: {"Units": "rad"} for c in ("rot_x", "rot_y", "rot_z")},
        "Description": "the simulated head poses (derivatives/truth: _desc-truth_motion)"})


def write_fast_derivatives(cfg: SimulationConfig, root: Path, scan: names.ScanEntities,
                           bp_mni: np.ndarray, grid: Grid, rng: np.random.Generator) -> None:
    """Participant-level outputs without the participant level (:func:`simulated_estimate`),
    unsmoothed and smoothed 8 mm, named as petbind names them."""
    estimate, smoothed = simulated_estimate(bp_mni, grid, cfg.derivatives_noise, SM_FWHM_MM, rng)
    label = get_model(DEFAULT_MODEL).label
    sidecar = {"Model": label, "Description": "simulated estimate (petbind-simulate "
               "--derivatives-only)", "Units": "unitless"}
    for volume, desc, extra in ((estimate, None, {}),
                                (smoothed, names.smoothing_desc(SM_FWHM_MM),
                                 {"SmoothingFWHMmm": SM_FWHM_MM})):
        path = names.scan_file(root / "derivatives" / "petbind", scan, "mimap", ".nii.gz",
                               space=TEMPLATE_SPACE, desc=desc, model=label, meas="BPND")
        write_nifti(path, volume, grid.affine)
        write_json(names.sidecar(path), {**sidecar, **extra})


def config_record(cfg: SimulationConfig) -> dict:
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()
              if k != "out_dir"}
    record["SoftwareVersion"] = __version__
    return record


def readme_text(cfg: SimulationConfig) -> str:
    groups = ", ".join(f"{g} (n={n})" for g, n in cfg.groups.items())
    return (f"Simulated PET dataset made by petbind-simulate {__version__} (seed {cfg.seed}).\n\n"
            f"Groups in column '{cfg.group_column}': {groups}. Tracers: "
            f"{', '.join(cfg.tracers)}. Effects (fraction lower than in '{next(iter(cfg.groups))}'"
            f"): {cfg.effects or 'none (null data)'}.\n\nThe truth (BPND maps, reference masks, "
            "head motion, regional values) is in derivatives/truth/.\n")
