"""Test-retest reliability statistics against the two-way ANOVA (statsmodels) and against
simulated participants with known between- and within-subject variation."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from workflows.group.reliability import reliability


def test_intraclass_correlations_equal_the_anova_mean_squares():
    # Independent route: statsmodels' least squares on the explicit designs of the two-way
    # ANOVA (subject + session) and the one-way ANOVA (subject) give MS_error and MS_within as
    # residual mean squares, MS_subjects from the subject term's extra sum of squares; Shrout
    # and Fleiss's ICC(3,1) and ICC(1,1) and SEM = sqrt(MS_error) from them must equal ours.
    rng = np.random.default_rng(0)
    true = rng.normal(2.0, 0.4, 15)
    test, retest = true + rng.normal(0, 0.15, 15), true + 0.05 + rng.normal(0, 0.15, 15)
    y = np.concatenate([test, retest])
    subject = np.tile(np.eye(15), (2, 1))                       # one column per participant
    session = np.repeat([0.0, 1.0], 15)[:, None]
    two = sm.OLS(y, np.hstack([subject, session])).fit()
    one = sm.OLS(y, subject).fit()
    without_subject = sm.OLS(y, sm.add_constant(session)).fit()
    mse, msw = two.mse_resid, one.mse_resid
    msr = (without_subject.ssr - two.ssr) / 14
    got = reliability(test[:, None], retest[:, None])
    assert got["icc_3_1"][0] == pytest.approx((msr - mse) / (msr + mse), rel=1e-10)
    assert got["icc_1_1"][0] == pytest.approx((msr - msw) / (msr + msw), rel=1e-10)
    assert got["sem"][0] == pytest.approx(np.sqrt(mse), rel=1e-10)
    diff = retest - test
    assert got["bias"][0] == pytest.approx(diff.mean())
    assert got["loa_high"][0] == pytest.approx(diff.mean() + 1.96 * diff.std(ddof=1))
    assert got["variability_percent"][0] == pytest.approx(
        100 * np.mean(np.abs(diff) / ((test + retest) / 2)))


def test_known_variation_is_recovered_within_its_sampling_error():
    # 2000 units (as voxels) of 20 participants: between-subject SD 0.3, within-subject SD 0.1
    # around a mean of 2: ICC = 0.09 / (0.09 + 0.01) = 0.9 and wSCV = 0.1 / 2 = 5 %. The means
    # over units are within a few of their sampling SEs (about 0.05 / sqrt(2000) for ICC), ICC
    # allowing for its known small-sample bias (about -0.01 from 20 participants).
    rng = np.random.default_rng(1)
    true = 2.0 + rng.normal(0, 0.3, (20, 2000))
    test = true + rng.normal(0, 0.1, true.shape)
    retest = true + rng.normal(0, 0.1, true.shape)
    got = reliability(test, retest)
    assert np.mean(got["icc_3_1"]) == pytest.approx(0.9, abs=0.02)
    assert np.mean(got["icc_1_1"]) == pytest.approx(0.9, abs=0.02)
    assert np.mean(got["wscv_percent"]) == pytest.approx(5.0, rel=0.03)
    assert np.mean(got["sem"]) == pytest.approx(0.1, rel=0.03)
    # |d| of two N(0, 0.1) errors has mean 0.1 * sqrt(2) * sqrt(2 / pi) = 0.113: 5.6 % of 2
    assert np.mean(got["variability_percent"]) == pytest.approx(100 * 0.1128 / 2, rel=0.03)


def test_a_session_shift_lowers_icc_3_1_less_than_icc_1_1():
    # A systematic retest - test shift is a session effect: ICC(3,1) (consistency) ignores it,
    # ICC(1,1) counts it as error; the bias shows it.
    rng = np.random.default_rng(2)
    true = 2.0 + rng.normal(0, 0.3, (20, 500))
    test = true + rng.normal(0, 0.1, true.shape)
    retest = true + 0.3 + rng.normal(0, 0.1, true.shape)
    got = reliability(test, retest)
    assert np.mean(got["icc_3_1"]) == pytest.approx(0.9, abs=0.02)
    assert np.mean(got["icc_1_1"]) < 0.75
    assert np.mean(got["bias"]) == pytest.approx(0.3, abs=0.01)


def test_missing_values_leave_out_only_that_participant_of_that_unit():
    rng = np.random.default_rng(3)
    test, retest = rng.normal(2, 0.3, (6, 2)), rng.normal(2, 0.3, (6, 2))
    test[0, 1] = np.nan
    got = reliability(test, retest)
    alone = reliability(test[1:, 1:], retest[1:, 1:])
    assert got["icc_3_1"][1] == pytest.approx(alone["icc_3_1"][0])
    assert np.isfinite(got["icc_3_1"][0])
    assert np.isnan(reliability(test[:1], retest[:1])["icc_3_1"]).all()


# ---- the group level's --analysis retest on simulated test-retest derivatives ----

import json  # noqa: E402

import nibabel as nib  # noqa: E402

from bids_app.cli.common import run_cli  # noqa: E402
from bids_app.cli.run import main as petbind_main  # noqa: E402
from bids_app.cli.simulate import main as simulate_main  # noqa: E402
from workflows.imaging.atlas import mni_grid, template_mask_on_grid  # noqa: E402


@pytest.fixture(scope="module")
def retest(tmp_path_factory):
    """20 participants scanned twice, regional BPND varying by a within-subject CV of 5 %
    between sessions; the maps are the truth (no estimation noise), so the analysis must give
    the truth's own reliability."""
    ds = tmp_path_factory.mktemp("retest") / "ds"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "20", "--derivatives-only", "--sessions", "test,retest",
        "--retest-cv", "0.05", "--derivatives-noise", "0", "--seed", "9", "-q"]) == 0
    out = ds / "derivatives" / "petbind"
    assert run_cli("petbind", petbind_main, [
        str(ds), str(out), "group", "--analysis", "retest", "--test-session", "test",
        "--retest-session", "retest", "-q"]) == 0
    truth = pd.read_csv(ds / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    wide = truth.pivot_table(index=["region", "participant_id"], columns="session",
                             values="BPND")
    return out / "group" / "retest", wide[wide["test"] > 0]


def test_regional_reliability_is_the_truths(retest):
    # Per region, wSCV and ICC(3,1) from the analysis equal those of the true regional BPND
    # (computed here from the truth table by the textbook formulas) within 10 % and 0.05: the
    # ROI means of the MNI maps carry the regions' session-to-session variation and no more.
    # Pooled, the within-subject CV is the simulated 5 % within its sampling error (15 %).
    folder, wide = retest
    table = pd.read_csv(folder / "trc-carfentanil_desc-region_retest.tsv",
                        sep="\t").set_index("region")
    pooled = []
    for region, values in wide.groupby(level="region"):
        t, r = values["test"].to_numpy(), values["retest"].to_numpy()
        d, m = r - t, (r + t) / 2
        wscv = 100 * np.sqrt(np.mean(d ** 2) / 2) / m.mean()
        ms_subjects, ms_error = 2 * m.var(ddof=1), d.var(ddof=1) / 2
        icc = (ms_subjects - ms_error) / (ms_subjects + ms_error)
        assert table.loc[region, "wscv_percent"] == pytest.approx(wscv, rel=0.1), region
        assert table.loc[region, "icc_3_1"] == pytest.approx(icc, abs=0.05), region
        assert table.loc[region, "n"] == 20
        pooled.append(table.loc[region, "wscv_percent"])
    assert np.mean(pooled) == pytest.approx(5.0, rel=0.15)


def test_voxelwise_maps_and_report(retest):
    # Voxel by voxel (smoothed maps) the variation between sessions is the regions': the median
    # wSCV in the brain is near the regional ones, ICC(3,1) lies in (0, 1) nearly everywhere;
    # every table column is described and the report shows the Bland-Altman plots.
    folder, _ = retest
    brain = template_mask_on_grid(mni_grid(2.0))
    wscv = np.asarray(nib.load(folder / "trc-carfentanil_desc-sm8_stat-wscv_statmap.nii.gz"
                               ).dataobj)[brain]
    icc = np.asarray(nib.load(folder / "trc-carfentanil_desc-sm8_stat-icc31_statmap.nii.gz"
                              ).dataobj)[brain]
    assert 3.0 < np.nanmedian(wscv) < 6.5
    assert np.mean((icc > 0) & (icc < 1)) > 0.95
    for desc in ("region", "values"):
        path = folder / f"trc-carfentanil_desc-{desc}_retest.tsv"
        described = json.loads(path.with_suffix(".json").read_text())
        assert set(described) == set(pd.read_csv(path, sep="\t").columns)
    report = (folder / "trc-carfentanil_report.html").read_text()
    assert "Bland-Altman" in report and "ICC(3,1)" in report
    assert "Shrout" in (folder / "logs" / "CITATION.md").read_text()
