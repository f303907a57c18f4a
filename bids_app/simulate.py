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
from nibabel.affines import voxel_sizes

from bids_app import __version__
from bids_app.bids_io import write_json, write_nifti, write_text, write_tsv
from bids_app.tracers import lookup_tracer
from workflows.atlas import (REGION_GROUPS, TEMPLATE_SPACE, Grid, load_atlas, load_template,
                             mni_grid, region_labels)
from workflows.kinetics.compartments import FengInput
from workflows.kinetics.frames import SEED_PROTOCOLS, FrameTiming
from workflows.resolution import fine_factors, smooth_fwhm
from workflows.simulation.anatomy import (SubjectWarp, native_grid_around, random_warp,
                                          sample_image, synthesize_t1w, template_brain)
from workflows.simulation.pet import (KineticSettings, pose_centre, random_motion, scan_pet,
                                      tac_tables, voxel_tacs)
from workflows.simulation.receptors import (PATTERNS, bpnd_map, subject_regional_bpnd,
                                            tissue_class_of_labels)

BIDS_VERSION = "1.10.0"
SM_FWHM_MM = 8.0
RIM_ACTIVITY_FRACTION = 0.5   # activity of the unlabelled rim of the brain, of cortex


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
    seed: int = 0
    target_model: str = "srtm"
    k4_per_min: float = 0.5
    age_effect_per_decade: float = 0.0
    sex_effect: float = 0.0
    derivatives_only: bool = False
    derivatives_noise: float = 0.15
    t1w: Path | None = None
    skull_stripped: bool = False    # T1w written as brain only (zero outside the truth mask)

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


class Atlas:
    """The MNI atlas grid, labels and tissue classes, loaded once."""

    def __init__(self) -> None:
        img = load_atlas()
        self.labels = np.asarray(img.dataobj).astype(np.int16)
        self.affine = img.affine
        self.voxel_mm = float(abs(img.affine[0, 0]))
        coords = np.argwhere(self.labels > 0)
        corners = np.array([coords.min(0), coords.max(0)], dtype=float)
        world = corners @ self.affine[:3, :3].T + self.affine[:3, 3]
        self.box = (world.min(0), world.max(0))


def mni_output_grid() -> Grid:
    return mni_grid(2.0)


def to_output_grid(values: np.ndarray, atlas: Atlas, grid: Grid, order: int = 1) -> np.ndarray:
    return sample_image((values, atlas.affine), grid.world_coordinates(), order=order
                        ).reshape(grid.shape)


def fine_pet_grid(pet: Grid) -> Grid:
    """The grid :func:`workflows.resolution.fine_factors` times finer than ``pet`` per axis,
    with fine voxel k i at the centre of PET voxel i."""
    factors = fine_factors(tuple(voxel_sizes(pet.affine)))
    affine = pet.affine.copy()
    affine[:3, :3] = pet.affine[:3, :3] / np.array(factors)
    return Grid(tuple(n * k for n, k in zip(pet.shape, factors)), affine)


def entities(sub: str, ses: str | None) -> str:
    return f"sub-{sub}" + (f"_ses-{ses}" if ses else "")


def folder(root: Path, sub: str, ses: str | None, datatype: str) -> Path:
    return root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / datatype


def simulate(cfg: SimulationConfig, log=print) -> None:
    """Write the dataset and its truth under ``cfg.out_dir``."""
    root = Path(cfg.out_dir)
    root.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(cfg.seed)
    table_rng, *subject_seeds = [np.random.default_rng(s) for s in seeds.spawn(cfg.n_subjects + 1)]
    participants = participants_table(cfg, table_rng)
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

    atlas = Atlas()
    rows: list[dict] = []
    # scratch: registrations of a given T1w (--t1w), used until the person's last scan is written
    with tempfile.TemporaryDirectory(prefix="petbind-simulate-") as scratch:
        for (_, person), rng in zip(participants.iterrows(), subject_seeds):
            rows += simulate_person(cfg, root, truth_root, atlas, person, rng, Path(scratch),
                                    log)
    write_tsv(truth_root / "regional_bpnd.tsv", pd.DataFrame(rows))


def simulate_person(cfg: SimulationConfig, root: Path, truth_root: Path, atlas: Atlas,
                    person: pd.Series, rng: np.random.Generator, scratch: Path, log=print
                    ) -> list[dict]:
    """One participant's anatomy and scans (every session and tracer) and their truth; returns
    the rows of the regional truth table."""
    out_grid = mni_output_grid()
    sub = person["participant_id"].removeprefix("sub-")
    in_effect_group = person[cfg.group_column] != next(iter(cfg.groups))
    anatomy = None if cfg.derivatives_only else make_anatomy(cfg, atlas, rng, scratch)
    rows = []
    for ses_index, ses in enumerate(cfg.sessions or [None]):
        occupancy = cfg.occupancy if ses_index > 0 else 0.0
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
            bp_atlas = bpnd_map(atlas.labels, receptors, atlas.voxel_mm, receptor_rng)
            bp_mni = to_output_grid(bp_atlas, atlas, out_grid)
            name = f"{entities(sub, ses)}_trc-{tracer}"
            write_nifti(folder(truth_root, sub, ses, "pet") /
                        f"{name}_space-{TEMPLATE_SPACE}_meas-BPND_mimap.nii.gz",
                        bp_mni, out_grid.affine)
            for region in REGION_GROUPS:
                mask = np.isin(atlas.labels, region_labels(region))
                rows.append({"participant_id": f"sub-{sub}", "session": ses or "n/a",
                             "tracer": tracer, "region": region,
                             "BPND": float(bp_atlas[mask].mean()),
                             "group": person[cfg.group_column]})
            if cfg.derivatives_only:
                write_fast_derivatives(cfg, root, sub, ses, name, bp_mni, out_grid, rng)
            else:
                write_pet(cfg, root, truth_root, sub, ses, tracer, name, anatomy, atlas,
                          bp_atlas, rng)
    return rows


@dataclass
class Anatomy:
    warp: object                 # callable: native points (N, 3) -> MNI points
    t1_grid: Grid
    t1: np.ndarray
    fine: Grid
    labels_fine: np.ndarray
    pet_grid: Grid
    labels_pet: np.ndarray
    brain_t1: np.ndarray
    rim_fine: np.ndarray         # brain voxels without an atlas label (fine grid)


def make_anatomy(cfg: SimulationConfig, atlas: Atlas, rng: np.random.Generator,
                 scratch: Path) -> Anatomy:
    if cfg.t1w is not None:
        return anatomy_from_t1w(cfg, atlas, scratch)
    template = load_template()
    warp = random_warp(rng, atlas.box)
    t1_grid = native_grid_around(warp, atlas.box, cfg.t1_voxel_mm, margin_mm=25.0)
    labels_t1 = sample_image((atlas.labels, atlas.affine), warp(t1_grid.world_coordinates()),
                             order=0).reshape(t1_grid.shape)
    t1, brain_t1 = synthesize_t1w(template, warp, t1_grid, rng, labels_t1 > 0)
    fine_mm = min(1.5, cfg.voxel_mm)
    fine = native_grid_around(warp, atlas.box, fine_mm, margin_mm=8.0)
    fine_points = warp(fine.world_coordinates())
    labels_fine = sample_image((atlas.labels, atlas.affine), fine_points,
                               order=0).reshape(fine.shape)
    template_fine = sample_image(template, fine_points, order=1).reshape(fine.shape)
    rim_fine = template_brain(template_fine, labels_fine > 0) & (labels_fine == 0)
    pet_grid = native_grid_around(warp, atlas.box, cfg.voxel_mm, margin_mm=16.0)
    labels_pet = sample_image((atlas.labels, atlas.affine), warp(pet_grid.world_coordinates()),
                              order=0).reshape(pet_grid.shape)
    return Anatomy(warp, t1_grid, t1, fine, labels_fine, pet_grid, labels_pet, brain_t1,
                   rim_fine)


class RegisteredWarp:
    """Native -> MNI points through ANTs transforms estimated by petbind's own anatomical stage
    (used when the phantom is built on a given T1w)."""

    def __init__(self, mni2t1w: list[str]) -> None:
        self.transforms = list(mni2t1w)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        import ants

        lps = points * np.array([-1.0, -1.0, 1.0])          # ITK points are LPS
        frame = pd.DataFrame(lps, columns=["x", "y", "z"])
        # mapping points native -> MNI uses the transforms that resample MNI images to native
        out = ants.apply_transforms_to_points(3, frame, self.transforms,
                                              whichtoinvert=[True, False])
        return out[["x", "y", "z"]].to_numpy() * np.array([-1.0, -1.0, 1.0])


def anatomy_from_t1w(cfg: SimulationConfig, atlas: Atlas, scratch: Path) -> Anatomy:
    """Anatomy from a given T1w: brain extraction and SyN normalisation (petbind's anatomical
    stage) give the native -> MNI mapping through which the atlas and receptor maps are pulled
    into the subject's space. The T1w itself is written unchanged."""
    import nibabel as nib

    from workflows.anat import bias_correct_and_extract, normalise

    work = Path(tempfile.mkdtemp(dir=scratch))
    _, brain, mask = bias_correct_and_extract(str(cfg.t1w), str(work), seed=cfg.seed)
    _, mni2t1w, _ = normalise(brain, str(work))
    warp = RegisteredWarp(mni2t1w)
    t1_img = nib.load(cfg.t1w)
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
    brain_t1 = np.asarray(nib.load(mask).dataobj) > 0
    t1_grid = Grid(t1.shape[:3], t1_img.affine)

    def grid_around_brain(voxel_mm: float, margin_mm: float) -> Grid:
        corners = np.argwhere(brain_t1)
        world = np.array([corners.min(0), corners.max(0)]) @ t1_img.affine[:3, :3].T + \
            t1_img.affine[:3, 3]
        lo, hi = world.min(0) - margin_mm, world.max(0) + margin_mm
        shape = tuple(int(v) for v in np.ceil((hi - lo) / voxel_mm) + 1)
        affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
        affine[:3, 3] = np.floor(lo / voxel_mm) * voxel_mm
        return Grid(shape, affine)

    fine = grid_around_brain(min(1.5, cfg.voxel_mm), 8.0)
    labels_fine = sample_image((atlas.labels, atlas.affine), warp(fine.world_coordinates()),
                               order=0).reshape(fine.shape)
    in_mask = sample_image((brain_t1.astype(np.uint8), t1_img.affine), fine.world_coordinates(),
                           order=0).reshape(fine.shape) > 0
    rim_fine = in_mask & (labels_fine == 0)
    pet_grid = grid_around_brain(cfg.voxel_mm, 16.0)
    labels_pet = sample_image((atlas.labels, atlas.affine), warp(pet_grid.world_coordinates()),
                              order=0).reshape(pet_grid.shape)
    return Anatomy(warp, t1_grid, t1, fine, labels_fine, pet_grid, labels_pet, brain_t1,
                   rim_fine)


def write_anatomy(cfg: SimulationConfig, root: Path, truth_root: Path, sub: str,
                  ses: str | None, anatomy: Anatomy) -> None:
    name = entities(sub, ses)
    t1 = np.where(anatomy.brain_t1, anatomy.t1, 0) if cfg.skull_stripped else anatomy.t1
    write_nifti(folder(root, sub, ses, "anat") / f"{name}_T1w.nii.gz", t1,
                anatomy.t1_grid.affine)
    write_json(folder(root, sub, ses, "anat") / f"{name}_T1w.json",
               {"Manufacturer": "petbind-simulate", "MagneticFieldStrength": 3,
                "Description": "synthetic T1w: MNI152NLin2009cAsym brain deformed, " +
                ("skull-stripped" if cfg.skull_stripped else "with head")})
    write_nifti(folder(truth_root, sub, ses, "anat") / f"{name}_desc-brain_mask.nii.gz",
                anatomy.brain_t1.astype(np.uint8), anatomy.t1_grid.affine, dtype=np.uint8)
    if isinstance(anatomy.warp, SubjectWarp):
        write_json(folder(truth_root, sub, ses, "anat") /
                   f"{name}_from-T1w_to-{TEMPLATE_SPACE}_mode-points_xfm.json",
                   {"Description": "native (scanner mm) to MNI: x_mni = A x + d(x); A below, d "
                    "a smooth displacement (SD about 2 mm) on control points",
                    "Affine": anatomy.warp.affine.tolist()})


def write_pet(cfg: SimulationConfig, root: Path, truth_root: Path, sub: str, ses: str | None,
              tracer: str, name: str, anatomy: Anatomy, atlas: Atlas, bp_atlas: np.ndarray,
              rng: np.random.Generator) -> None:
    timing = FrameTiming.from_protocol(SEED_PROTOCOLS.get(tracer, SEED_PROTOCOLS["madam"]))
    dose = float(rng.uniform(0.8, 1.2))
    plasma = FengInput(a1=FengInput.a1 * dose, a2=FengInput.a2 * dose, a3=FengInput.a3 * dose)
    settings = KineticSettings(target_model=cfg.target_model, k4_per_min=cfg.k4_per_min)
    fine_points = anatomy.warp(anatomy.fine.world_coordinates())
    # nearest neighbour, as for the labels: every voxel of a region carries that region's BPND,
    # so the phantom's regional means are the truth table's (linear interpolation would mix
    # neighbouring regions' values at every border: 5-15 % lower means in small regions)
    bp_fine = sample_image((bp_atlas, atlas.affine), fine_points, order=0)
    classes = tissue_class_of_labels(anatomy.labels_fine).reshape(-1)
    tables, bp_grid = tac_tables(timing, settings, float(bp_fine.max()), plasma)
    activity = voxel_tacs(classes, bp_fine, tables, bp_grid)
    # the unlabelled rim of the brain: cortex partial-volumed with CSF
    cortex_bp = np.array([np.median(bp_fine[classes == 0])])
    rim_tac = voxel_tacs(np.zeros(1, dtype=np.int8), cortex_bp, tables, bp_grid)[0]
    activity[anatomy.rim_fine.reshape(-1)] = RIM_ACTIVITY_FRACTION * rim_tac
    activity = activity.reshape((*anatomy.fine.shape, timing.n_frames))
    motion = random_motion(timing.n_frames, cfg.motion_mm, rng)
    pet = scan_pet(activity, anatomy.fine, anatomy.pet_grid, timing, motion, cfg.psf_fwhm_mm,
                   cfg.noise, lookup_tracer(tracer).radionuclide, rng)
    pet_dir = folder(root, sub, ses, "pet")
    write_nifti(pet_dir / f"{name}_pet.nii.gz", pet, anatomy.pet_grid.affine)
    write_json(pet_dir / f"{name}_pet.json",
               pet_sidecar(tracer, timing, 400.0 * dose, cfg.psf_fwhm_mm))
    truth_dir = folder(truth_root, sub, ses, "pet")
    pet_points = anatomy.warp(anatomy.pet_grid.world_coordinates())
    bp_native = sample_image((bp_atlas, atlas.affine), pet_points, order=0)
    write_nifti(truth_dir / f"{name}_meas-BPND_mimap.nii.gz",
                bp_native.reshape(anatomy.pet_grid.shape), anatomy.pet_grid.affine)
    reference = PATTERNS[tracer].reference_region
    # the reference region's voxels (truth exactly BPND 0)
    ref_mask = np.isin(anatomy.labels_pet, region_labels(reference)) & (bp_native.reshape(
        anatomy.pet_grid.shape) == 0.0)
    write_nifti(truth_dir / f"{name}_label-{reference}_desc-reference_mask.nii.gz",
                ref_mask.astype(np.uint8), anatomy.pet_grid.affine, dtype=np.uint8)
    write_nifti(truth_dir / f"{name}_seg-neuromorphometrics_dseg.nii.gz",
                anatomy.labels_pet.astype(np.int16), anatomy.pet_grid.affine, dtype=np.int16)
    # the labels on the grid the GTM models the blur on (PET voxel i is fine voxel k i)
    fine = fine_pet_grid(anatomy.pet_grid)
    labels_fine = sample_image((atlas.labels, atlas.affine),
                               anatomy.warp(fine.world_coordinates()), order=0)
    write_nifti(truth_dir / f"{name}_seg-neuromorphometrics_desc-fine_dseg.nii.gz",
                labels_fine.reshape(fine.shape).astype(np.int16), fine.affine, dtype=np.int16)
    brain_pet = anatomy.labels_pet > 0
    write_nifti(truth_dir / f"{name}_desc-brain_mask.nii.gz", brain_pet.astype(np.uint8),
                anatomy.pet_grid.affine, dtype=np.uint8)
    write_tsv(truth_dir / f"{name}_desc-truth_motion.tsv", pd.DataFrame(
        motion, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]))
    write_json(truth_dir / f"{name}_desc-truth_motion.json", {
        "Description": "head pose per frame: x -> R (x - c) + c + t, R = Rz Ry Rx, RAS mm; "
        "the frame shows the head moved by this pose relative to frame 0",
        "RotationCentreMm": pose_centre(anatomy.fine).tolist(),
        "trans_x": {"Units": "mm"}, "rot_x": {"Units": "rad"}})


def write_fast_derivatives(cfg: SimulationConfig, root: Path, sub: str, ses: str | None,
                           name: str, bp_mni: np.ndarray, grid: Grid,
                           rng: np.random.Generator) -> None:
    """Participant-level outputs without the participant level: the MNI truth plus estimation
    noise (SD ``derivatives_noise`` x (0.3 + BPND), spatially correlated with FWHM 6 mm as after
    PET resolution and modest smoothing), unsmoothed and smoothed 8 mm."""
    vox = float(grid.affine[0, 0])
    brain = bp_mni > 0
    noise = smooth_fwhm(rng.standard_normal(grid.shape), 6.0, vox)
    noise /= noise[brain].std() or 1.0
    estimate = np.where(brain, bp_mni + cfg.derivatives_noise * (0.3 + bp_mni) * noise, 0.0)
    smoothed = smooth_fwhm(estimate, SM_FWHM_MM, vox)
    out = folder(root / "derivatives" / "petbind", sub, ses, "pet")
    base = f"{name}_space-{TEMPLATE_SPACE}"
    sidecar = {"Model": "SRTM", "Description": "simulated estimate (petbind-simulate "
               "--derivatives-only)", "Units": "unitless"}
    write_nifti(out / f"{base}_model-SRTM_meas-BPND_mimap.nii.gz", estimate, grid.affine)
    write_json(out / f"{base}_model-SRTM_meas-BPND_mimap.json", sidecar)
    write_nifti(out / f"{base}_desc-sm8_model-SRTM_meas-BPND_mimap.nii.gz", smoothed, grid.affine)
    write_json(out / f"{base}_desc-sm8_model-SRTM_meas-BPND_mimap.json",
               {**sidecar, "SmoothingFWHMmm": SM_FWHM_MM})


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
