"""The petbind command line (BIDS-Apps conventions). Only builds the parser."""

from __future__ import annotations

from pathlib import Path

from bids_app import __version__
from bids_app.cli.common import Parser
from workflows.kinetics.models import voxelwise_models


def build_parser() -> Parser:
    p = Parser(prog="petbind", description="petbind: BPND maps from dynamic PET (participant "
               "level) and group statistics (group level). A BIDS-App.")
    p.add_argument("bids_dir", type=Path, help="the BIDS dataset (read only)")
    p.add_argument("output_dir", type=Path, help="where derivatives go (not inside bids_dir)")
    p.add_argument("analysis_level", choices=["participant", "group"])
    p.add_argument("--version", action="version", version=f"petbind {__version__}")
    _add_selection(p)
    _add_resources(p)
    _add_processing(p)
    _add_group_options(p)
    out = p.add_argument_group("messages")
    out.add_argument("-v", "--verbose", action="count", default=0)
    out.add_argument("-q", "--quiet", action="store_true")
    return p


def _add_selection(p: Parser) -> None:
    sel = p.add_argument_group("selecting data")
    sel.add_argument("--participant-label", "--participant_label", nargs="+", default=[],
                     metavar="LABEL", help="participants to process, with or without 'sub-'")
    sel.add_argument("--session-label", nargs="+", default=[], metavar="LABEL",
                     help="sessions to process, with or without 'ses-'")
    sel.add_argument("--tracer", nargs="+", default=[], metavar="LABEL",
                     help="trc- labels to process")
    sel.add_argument("--bids-filter-file", type=Path, metavar="FILE",
                     help="JSON with pybids filters for 'pet' and 't1w' queries")
    sel.add_argument("--derivatives", nargs="+", type=Path, default=[], metavar="DIR",
                     help="derivative folders to use instead of preprocessing: PETPrep's output "
                     "(recognised by its dataset_description.json). Scans with PETPrep TACs "
                     "are fitted region by region with every model; the others are processed "
                     "by petbind itself")
    sel.add_argument("--reference-tac", nargs="+", default=None, metavar="LABEL",
                     help="with --derivatives: the segmentation labels whose TACs make the "
                     "reference region (volume-weighted); default: the tracer's reference "
                     "region in FreeSurfer names, e.g. Left- and Right-Cerebellum-Cortex")
    sel.add_argument("--skip-bids-validation", action="store_true",
                     help="do not run bids-validator-deno on the input")


def _add_resources(p: Parser) -> None:
    perf = p.add_argument_group("resources")
    perf.add_argument("--nprocs", "--n-cpus", type=int, default=1,
                      help="processes nipype may run at once (default 1)")
    perf.add_argument("--omp-nthreads", type=int, default=1,
                      help="threads per process (ANTs, BLAS; default 1)")
    perf.add_argument("--mem", type=float, metavar="GB", help="memory limit for the scheduler")
    perf.add_argument("-w", "--work-dir", type=Path, metavar="DIR",
                      help="nipype work directory; reuse it to resume (default: $PETBIND_WORK_DIR "
                      "if set, as in the container image, else OUTPUT_DIR/../petbind_work)")
    perf.add_argument("--plugin", default="MultiProc",
                      help="nipype plugin: Linear, MultiProc, SLURM, SGE, PBS, ... (default "
                      "MultiProc)")
    perf.add_argument("--plugin-args", default="{}", metavar="JSON",
                      help="plugin arguments as JSON, e.g. '{\"sbatch_args\": \"-t 2:00:00\"}'")
    perf.add_argument("--stop-on-first-crash", action="store_true")


def _add_processing(p: Parser) -> None:
    opts = p.add_argument_group("processing")
    opts.add_argument("--config-file", type=Path, metavar="FILE",
                      help="JSON: tracers (reference_region, theta3_range, radionuclide), "
                      "smoothing_fwhm, n_bases")
    opts.add_argument("--smoothing-fwhm", type=float, metavar="MM",
                      help="FWHM of the smoothing of MNI maps (default 8 mm: desc-sm8)")
    opts.add_argument("--pvc-psf-fwhm", type=float, metavar="MM",
                      help="also correct the regional TACs for partial-volume effects by the "
                      "geometric transfer matrix (GTM) with a Gaussian PSF of this FWHM, the "
                      "scanner's resolution (e.g. 2.5 for the HRRT), and fit them: "
                      "_seg-neuromorphometrics_pvc-GTM_tacs.tsv, _pvc-GTM_model-SRTM_kinpar.tsv "
                      "(default: no PVC)")
    opts.add_argument("--pvc-method", choices=["gtm", "rbv", "mg"], default="gtm",
                      help="with --pvc-psf-fwhm: gtm corrects the regional TACs only; rbv "
                      "(region-based voxelwise) or mg (Mueller-Gaertner, grey matter) also "
                      "correct the frames voxel by voxel on that GTM and fit every voxelwise "
                      "model to them: maps named pvc-RBV or pvc-MG, in PET space, MNI space "
                      "and smoothed (default gtm)")
    opts.add_argument("--model", nargs="+", default=["srtm-bfm"], metavar="MODEL",
                      choices=voxelwise_models(),
                      help="voxelwise kinetic models: at the participant level the models to "
                      "fit (several allowed), at the group level the one whose BPND maps are "
                      f"analysed; one of {', '.join(voxelwise_models())} (default srtm-bfm)")
    opts.add_argument("--seed", type=int, default=0, help="seed of randomised steps")
    opts.add_argument("--skull-strip-t1w", choices=["auto", "force", "skip"], default="auto",
                      help="brain extraction of the T1w: force runs ROBEX, skip takes the T1w as "
                      "brain-extracted already, auto (default) skips only when the image "
                      "background is exactly zero")


def _add_group_options(p: Parser) -> None:
    grp = p.add_argument_group("group level")
    grp.add_argument("--analysis", choices=["groups", "occupancy", "retest"], default="groups",
                     help="groups (default): compare the groups of a participants.tsv column "
                     "within one session; occupancy: receptor occupancy between "
                     "--baseline-session and --blocked-session (group/occupancy/); retest: "
                     "test-retest reliability between --test-session and --retest-session "
                     "(group/retest/)")
    grp.add_argument("--test-session", metavar="LABEL", help="retest: the first session")
    grp.add_argument("--retest-session", metavar="LABEL", help="retest: the second session")
    grp.add_argument("--baseline-session", metavar="LABEL", help="occupancy: the session "
                     "without the drug")
    grp.add_argument("--blocked-session", metavar="LABEL", help="occupancy: the session with it")
    grp.add_argument("--exposure-column", metavar="COLUMN",
                     help="occupancy: the dose or concentration column of sub-*_sessions.tsv "
                     "(or participants.tsv); fits occupancy = Omax C / (C + EC50)")
    grp.add_argument("--fit-omax", action="store_true",
                     help="occupancy: fit Omax too (default: fixed at 1)")
    grp.add_argument("--min-baseline-bpnd", type=float, default=0.3, metavar="BPND",
                     help="occupancy: regions and voxels whose baseline BPND is lower are left "
                     "out of the occupancy plot and maps (default 0.3)")
    grp.add_argument("--group-column", help="participants.tsv column of the groups (default: "
                     "the single column participants.json describes with Levels, sex aside)")
    grp.add_argument("--reference-group", help="level compared with all others pooled in the "
                     "two-class analysis (default: the first level listed)")
    grp.add_argument("--covariates", nargs="*", default=None, metavar="COLUMN",
                     help="participants.tsv columns for the adjusted models (default: age and "
                     "sex when present); categorical ones are dummy-coded")
    grp.add_argument("--smoothing", default="sm8", metavar="DESC",
                     help="which participant maps the voxelwise GLM uses: the desc- label "
                     "(default sm8), or 'none' for the unsmoothed maps")
    grp.add_argument("--cluster-threshold", type=float, default=0.001, metavar="P",
                     help="cluster-forming threshold, uncorrected voxel p (default 0.001)")
    grp.add_argument("--fdr-q", type=float, default=0.025, help="FDR level (default 0.025)")
    grp.add_argument("--n-permutations", type=int, default=1000,
                     help="permutations for cluster p-values (default 1000)")
    grp.add_argument("--voxel-fdr", action="store_true",
                     help="also write voxel-level FDR maps (Benjamini-Hochberg at --fdr-q over "
                     "the parametric voxel p): desc-voxelFDR")
    grp.add_argument("--tfce", action="store_true",
                     help="also threshold-free cluster enhancement with permutation FWE p "
                     "(t contrasts; nilearn; slow: about 1-2 s per permutation at 2 mm)")
    grp.add_argument("--exclude-flagged", action="store_true",
                     help="leave out participants whose scan's quality control flagged a metric "
                     "(listed with the metrics); by default they are analysed and listed")
    grp.add_argument("--pvc", nargs="?", const="any", choices=["rbv", "mg", "any"],
                     help="analyse the maps corrected for partial volume voxel by voxel "
                     "(participant level --pvc-method rbv or mg): --pvc alone takes the ones "
                     "there are, --pvc rbv or --pvc mg chooses; with --roi-source regional the "
                     "GTM-corrected regional fits")
    grp.add_argument("--roi-source", choices=["maps", "regional"], default="maps",
                     help="the ROI analysis (Table 2, Tukey) on the mean of each participant's "
                     "unsmoothed MNI map over each ROI (maps, the default, as the seed study), "
                     "or on the participant level's regional SRTM fits (regional: GTM-corrected "
                     "with --pvc)")
    grp.add_argument("--roi-atlas", default="neuromorphometrics", metavar="ATLAS",
                     help="'neuromorphometrics' (default: the seed study's ten ROIs, bilateral "
                     "and per hemisphere), or a label image in MNI152NLin2009cAsym (.nii[.gz]) "
                     "with a TSV of 'index' and 'name' beside it (same name, .tsv): every "
                     "label becomes a region")
