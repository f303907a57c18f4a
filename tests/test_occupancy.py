"""Occupancy from baseline and blocked BPND: the per-region ratio, the occupancy plot across
regions, and the exposure-occupancy curve, against known truth and statsmodels."""

import numpy as np
import pytest
import statsmodels.api as sm

from workflows.group.occupancy import (fit_exposure_occupancy, occupancy_plot,
                                       regional_occupancy)


def regions(rng, n=40):
    """Baseline BPND of n regions, 0.2 to 4 (log-uniform), as across a brain atlas."""
    return np.exp(rng.uniform(np.log(0.2), np.log(4.0), n))


@pytest.mark.parametrize("occupancy", [0.5, 0.9])
def test_occupancy_plot_recovers_the_occupancy_of_every_region(occupancy):
    # The drug takes the same fraction of receptors everywhere: blocked = (1 - occ) baseline.
    # Regional BPND with noise of SD 0.02 + 3 % (both scans, 40 regions), 200 participants: the
    # slope through the origin is unbiased (mean within 0.005) and within 0.02 of the truth in
    # 95 % of participants or more.
    rng = np.random.default_rng(1)
    errors = []
    for _ in range(200):
        base_true = regions(rng)
        noisy = [t + rng.normal(0, 0.02 + 0.03 * t) for t in (base_true,
                                                              (1 - occupancy) * base_true)]
        fit = occupancy_plot(*noisy)
        errors.append(fit.occupancy - occupancy)
    errors = np.array(errors)
    assert abs(errors.mean()) < 0.005
    assert np.mean(np.abs(errors) < 0.02) >= 0.95
    assert fit.n_regions == 40


def test_occupancy_plot_equals_statsmodels_ols():
    # Independent implementation: statsmodels OLS of (baseline - blocked) on baseline, without
    # and with a constant: the same estimates, confidence limits and intercept p.
    rng = np.random.default_rng(2)
    base = regions(rng, 25)
    blocked = 0.4 * base + rng.normal(0, 0.05, base.size) + 0.03
    fit = occupancy_plot(base, blocked)
    y = base - blocked
    origin = sm.OLS(y, base).fit()
    full = sm.OLS(y, sm.add_constant(base)).fit()
    np.testing.assert_allclose([fit.occupancy, fit.occupancy_low, fit.occupancy_high],
                               [origin.params[0], *origin.conf_int(0.05)[0]], rtol=1e-10)
    np.testing.assert_allclose([fit.intercept, fit.slope, fit.intercept_low, fit.intercept_high,
                                fit.intercept_p],
                               [full.params[0], full.params[1], *full.conf_int(0.05)[0],
                                full.pvalues[0]], rtol=1e-8)


def test_occupancy_interval_covers_the_truth_95_percent_of_the_time():
    # Homoscedastic regional noise (SD 0.05), 500 participants: the 95 % interval of the
    # slope through the origin covers the true occupancy 0.7 in 95 % of them (binomial SD
    # 1 %: 92-98 % allowed).
    rng = np.random.default_rng(3)
    base = regions(rng, 20)
    hits = 0
    for _ in range(500):
        fit = occupancy_plot(base + rng.normal(0, 0.05, 20),
                             0.3 * base + rng.normal(0, 0.05, 20))
        hits += fit.occupancy_low < 0.7 < fit.occupancy_high
    assert 0.92 <= hits / 500 <= 0.98


def test_intercept_flags_reference_binding_the_drug_does_not_displace():
    # BPND is measured against the reference: BPND' = (1 + BP) / (1 + BP_ref) - 1. If the
    # reference holds binding (BP_ref 0.3) to sites the drug does not occupy, baseline -
    # blocked = occ x + occ BP_ref / (1 + BP_ref): an intercept of 0.14 at occupancy 0.6, found
    # (p < 0.001, interval holding it) while the slope stays the occupancy. A reference free of
    # binding gives an intercept compatible with 0.
    rng = np.random.default_rng(4)
    bp = regions(rng)
    occ = 0.6

    def measured(bp_ref):
        base = (1 + bp) / (1 + bp_ref) - 1
        block = (1 + (1 - occ) * bp) / (1 + bp_ref) - 1
        return base + rng.normal(0, 0.01, bp.size), block + rng.normal(0, 0.01, bp.size)

    bound = occupancy_plot(*measured(0.3))
    expected = occ * 0.3 / 1.3
    assert bound.intercept_p < 1e-3
    assert bound.intercept_low < expected < bound.intercept_high
    assert abs(bound.slope - occ) < 0.01
    free = occupancy_plot(*measured(0.0))
    assert free.intercept_low < 0 < free.intercept_high
    assert abs(free.occupancy - occ) < 0.01


def test_regional_standard_error_matches_the_scatter_of_the_ratio():
    # Delta method: SE of 1 - blocked/baseline from the two BPNDs' SEs; against the SD of the
    # ratio over 20,000 normal draws (within 5 %). A baseline BPND of 0 gives NaN, not inf.
    rng = np.random.default_rng(5)
    base, block, se_base, se_block = 2.0, 0.6, 0.08, 0.05
    draws = 1 - (block + rng.normal(0, se_block, 20000)) / (base + rng.normal(0, se_base, 20000))
    occ, se = regional_occupancy([base, 0.0], [block, 0.1], [se_base, 0.1], [se_block, 0.1])
    assert occ[0] == pytest.approx(0.7)
    assert se[0] == pytest.approx(draws.std(), rel=0.05)
    assert np.isnan(occ[1]) and np.isnan(se[1])
    assert np.isnan(regional_occupancy([1.0], [0.5])[1]).all()    # no SEs given


def test_ec50_from_twelve_participants_within_15_percent():
    # 12 participants, exposures log-spaced from EC50/4 to 4 EC50 (EC50 = 3 mg), occupancy
    # measured with SD 0.02: EC50 within 15 % and inside its interval; with Omax free (truth
    # 0.85), Omax within 0.05.
    rng = np.random.default_rng(6)
    dose = np.geomspace(0.75, 12.0, 12)
    for omax, fit_omax in ((1.0, False), (0.85, True)):
        occ = omax * dose / (dose + 3.0) + rng.normal(0, 0.02, dose.size)
        fit = fit_exposure_occupancy(dose, occ, fit_omax=fit_omax)
        assert abs(fit.ec50 / 3.0 - 1) < 0.15, fit
        assert fit.ec50_low < 3.0 < fit.ec50_high
        assert abs(fit.omax - omax) < 0.05
        assert np.isnan(fit.omax_se) != fit_omax
    np.testing.assert_allclose(fit.predict([fit.ec50]), fit.omax / 2)


def test_ec50_interval_covers_the_truth_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    dose = np.geomspace(0.75, 12.0, 12)
    truth = dose / (dose + 3.0)
    hits = sum(f.ec50_low < 3.0 < f.ec50_high for f in (
        fit_exposure_occupancy(dose, truth + rng.normal(0, 0.03, 12)) for _ in range(400)))
    assert 0.91 <= hits / 400 <= 0.98


def test_too_few_points_is_an_error_not_a_number():
    with pytest.raises(ValueError, match="3 regions"):
        occupancy_plot([1.0, 2.0], [0.5, 1.0])
    with pytest.raises(ValueError, match="participants"):
        fit_exposure_occupancy([1.0, 2.0], [0.3, 0.5])


# ---- the group level's --analysis occupancy on simulated participant derivatives ----

import json  # noqa: E402

import nibabel as nib  # noqa: E402
import pandas as pd  # noqa: E402

from bids_app.cli.common import run_cli  # noqa: E402
from bids_app.cli.run import main as petbind_main  # noqa: E402
from bids_app.cli.simulate import main as simulate_main  # noqa: E402
from workflows.imaging.atlas import mni_grid, template_mask_on_grid  # noqa: E402

OCCUPANCY = ["--analysis", "occupancy", "--baseline-session", "baseline", "--blocked-session",
             "blocked", "--n-permutations", "200"]


def simulate_sessions(ds, *args):
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--derivatives-only", "--sessions", "baseline,blocked", "-q", *args]) == 0
    return ds, ds / "derivatives" / "petbind"


@pytest.fixture(scope="module")
def dosed(tmp_path_factory):
    """12 participants with doses from EC50/4 to 4 x EC50 (EC50 3 mg), analysed."""
    ds, out = simulate_sessions(tmp_path_factory.mktemp("occ") / "ds", "--n-subjects", "12",
                                "--exposure-column", "dose_mg", "--ec50", "3", "--seed", "5")
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *OCCUPANCY,
                                             "--exposure-column", "dose_mg", "-q"]) == 0
    truth = pd.read_csv(ds / "derivatives" / "truth" / "occupancy.tsv", sep="\t")
    return out / "group" / "occupancy", truth[truth["session"] == "blocked"].set_index(
        "participant_id")


def table(folder, desc):
    return pd.read_csv(folder / f"trc-carfentanil_desc-{desc}_occupancy.tsv", sep="\t")


def test_each_participants_occupancy_and_the_ec50_match_the_truth(dosed):
    # Occupancy from 0.2 to 0.8 (doses EC50/4 to 4 EC50). The simulated maps carry estimation
    # noise (ROI means about 6 % of BPND; at occupancy 0.2 the slope's SE is about 0.02), so
    # each participant's occupancy is within 0.05 of the truth with RMS under 0.02, and EC50
    # from the 12 within 15 % of 3 mg, inside its interval.
    folder, truth = dosed
    fits = table(folder, "participant").set_index("participant_id")
    error = fits["occupancy"] - truth.loc[fits.index, "occupancy"]
    assert len(fits) == 12 and (fits["regional_source"] == "MNI maps").all()
    assert error.abs().max() < 0.05 and np.sqrt((error ** 2).mean()) < 0.02, error
    np.testing.assert_allclose(fits["exposure"], truth.loc[fits.index, "exposure"])
    ec50 = table(folder, "exposure").iloc[0]
    assert abs(ec50["ec50"] / 3 - 1) < 0.15 and ec50["ec50_ci_low"] < 3 < ec50["ec50_ci_high"]
    assert ec50["omax"] == 1 and ec50["n"] == 12


def test_regional_and_voxelwise_occupancy_match_the_mean_truth(dosed):
    # Every region's mean occupancy over participants is the mean true occupancy (the drug
    # blocks every region alike) within 0.03; so is the median of the mean occupancy map in
    # the brain, where it is defined (baseline BPND >= 0.3).
    folder, truth = dosed
    expected = truth["occupancy"].mean()
    means = table(folder, "regionmean")
    assert len(means) >= 10 and (means["mean"] - expected).abs().max() < 0.03, means
    grid = mni_grid(2.0)
    mean_map = nib.load(folder / "trc-carfentanil_desc-mean_meas-occupancy_mimap.nii.gz")
    values = np.asarray(mean_map.dataobj)[template_mask_on_grid(grid)]
    assert np.isfinite(values).mean() > 0.5
    assert abs(np.nanmedian(values) - expected) < 0.03
    regions = table(folder, "region")
    assert set(regions.columns) >= {"bpnd_baseline", "bpnd_blocked", "occupancy",
                                    "occupancy_se", "in_plot"}


def test_every_table_column_is_described_and_the_report_shows_the_analysis(dosed):
    folder, _ = dosed
    for desc in ("participant", "region", "regionmean", "exposure"):
        path = folder / f"trc-carfentanil_desc-{desc}_occupancy.tsv"
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert set(sidecar) == set(table(folder, desc).columns), desc
    settings = json.loads((folder / "trc-carfentanil_desc-settings.json").read_text())
    assert settings["Analysis"] == "occupancy" and settings["BlockedSession"] == "blocked"
    report = (folder / "trc-carfentanil_report.html").read_text()
    assert "EC50" in report and "Occupancy plot per participant" in report
    assert (folder / "logs" / "CITATION.md").read_text().count("Lassen") >= 1


def test_binding_fell_where_the_drug_occupies_and_not_without_it(dosed, tmp_path):
    # The paired voxelwise test: with occupancy 0.2-0.8 binding fell across the brain (a
    # significant cluster covering most of the tested voxels); with occupancy 0 (8
    # participants, only estimation noise between sessions) no cluster survives.
    folder, _ = dosed
    clusters = pd.read_csv(folder / "trc-carfentanil_contrast-baselineGtBlocked_clusters.tsv",
                           sep="\t")
    assert clusters["significant"].any()
    assert clusters.loc[clusters["significant"], "size_voxels"].sum() > 50_000
    ds, out = simulate_sessions(tmp_path / "ds", "--n-subjects", "8", "--occupancy", "0",
                                "--seed", "12")
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *OCCUPANCY,
                                             "-q"]) == 0
    null = pd.read_csv(out / "group" / "occupancy" /
                       "trc-carfentanil_contrast-baselineGtBlocked_clusters.tsv", sep="\t")
    assert not null["significant"].any()
    fits = table(out / "group" / "occupancy", "participant")
    assert fits["occupancy"].abs().max() < 0.05          # the noise of the dosed test


def test_high_occupancy_is_recovered_within_002(tmp_path):
    # Occupancy 0.9 in every participant: the blocked BPND is a tenth of baseline; each
    # participant's estimate within 0.02.
    ds, out = simulate_sessions(tmp_path / "ds", "--n-subjects", "6", "--occupancy", "0.9",
                                "--seed", "6")
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *OCCUPANCY,
                                             "-q"]) == 0
    fits = table(out / "group" / "occupancy", "participant")
    assert len(fits) == 6 and (fits["occupancy"] - 0.9).abs().max() < 0.02


def test_occupancy_bad_input_one_line_each(tmp_path, capsys):
    # A participant with one session is left out with the reason; a non-numeric dose (65), a
    # session that does not exist (64) and occupancy options without --analysis occupancy (64)
    # stop with one line naming the file or option.
    import shutil
    ds, out = simulate_sessions(tmp_path / "ds", "--n-subjects", "5", "--exposure-column",
                                "dose_mg", "--ec50", "2", "--seed", "7")
    shutil.rmtree(out / "sub-05" / "ses-blocked")
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *OCCUPANCY,
                                             "-q"]) == 0
    left = pd.read_csv(out / "group" / "occupancy" /
                       "trc-carfentanil_desc-leftout_participants.tsv", sep="\t")
    assert list(left["participant_id"]) == ["sub-05"] and "one session" in left["reason"][0]
    sessions = ds / "sub-02" / "sub-02_sessions.tsv"
    sessions.write_text("session_id\tdose_mg\nses-baseline\t0\nses-blocked\tten\n")
    capsys.readouterr()
    code = run_cli("petbind", petbind_main, [str(ds), str(out), "group", *OCCUPANCY,
                                             "--exposure-column", "dose_mg"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 65 and "sub-02_sessions.tsv" in err[-1] and "'ten'" in err[-1]
    sessions.write_bytes(b"session_id\tdose_mg\n\xff\xfe\x00bad\n")     # not text
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *OCCUPANCY,
                                             "--exposure-column", "dose_mg"]) == 65
    assert "sub-02_sessions.tsv: not a readable TSV" in capsys.readouterr().err
    assert run_cli("petbind", petbind_main, [
        str(ds), str(out), "group", "--analysis", "occupancy", "--baseline-session", "baseline",
        "--blocked-session", "placebo"]) == 64
    assert "sessions: baseline, blocked" in capsys.readouterr().err
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", "--blocked-session",
                                             "blocked"]) == 64
    assert "--analysis occupancy" in capsys.readouterr().err
    # a threshold no region reaches (as for a tracer of low binding): every participant is left
    # out, and the one line says which option to lower
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *OCCUPANCY,
                                             "--min-baseline-bpnd", "50"]) == 66
    assert "lower --min-baseline-bpnd" in capsys.readouterr().err.strip().splitlines()[-1]


def test_occupancy_and_group_comparison_results_live_side_by_side(tmp_path):
    # Each analysis replaces only its own results: a group comparison of the baseline session
    # and an occupancy analysis, run in either order, leave both in group/.
    ds, out = simulate_sessions(tmp_path / "ds", "--n-subjects", "4", "--occupancy", "0.5",
                                "--seed", "8")
    groups = [str(ds), str(out), "group", "--session-label", "baseline", "--covariates",
              "--n-permutations", "10", "-q"]
    occupancy = [str(ds), str(out), "group", *OCCUPANCY, "-q"]
    stats = out / "group" / "trc-carfentanil_desc-roi_stats.tsv"
    fits = out / "group" / "occupancy" / "trc-carfentanil_desc-participant_occupancy.tsv"
    for first, second in ((groups, occupancy), (occupancy, groups)):
        assert run_cli("petbind", petbind_main, first) == 0
        assert run_cli("petbind", petbind_main, second) == 0
        assert stats.is_file() and fits.is_file()


def test_an_exposure_that_does_not_change_may_come_from_participants_tsv(tmp_path):
    # Without sub-*_sessions.tsv, the exposure column is read from participants.tsv (BIDS puts
    # values that do not change between sessions there); n/a there is an error naming it.
    ds, out = simulate_sessions(tmp_path / "ds", "--n-subjects", "4", "--occupancy", "0.5",
                                "--seed", "13")
    participants = pd.read_csv(ds / "participants.tsv", sep="\t")
    participants["plasma_ng_ml"] = [1.5, 2.0, 4.0, 8.0]
    participants.to_csv(ds / "participants.tsv", sep="\t", index=False)
    args = [str(ds), str(out), "group", *OCCUPANCY, "--exposure-column", "plasma_ng_ml", "-q"]
    assert run_cli("petbind", petbind_main, args) == 0
    fits = table(out / "group" / "occupancy", "participant").set_index("participant_id")
    assert fits["exposure"].to_dict() == {"sub-01": 1.5, "sub-02": 2.0, "sub-03": 4.0,
                                          "sub-04": 8.0}
    participants["plasma_ng_ml"] = ["1.5", "n/a", "4", "8"]
    participants.to_csv(ds / "participants.tsv", sep="\t", index=False)
    assert run_cli("petbind", petbind_main, args) == 65
