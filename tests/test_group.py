"""The group level: planted effects found where they are, null data controlled, ROI statistics
equal to independent routines."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage, stats

from bids_app.cli.common import run_cli
from bids_app.cli.run import main as petbind_main
from bids_app.cli.simulate import main as simulate_main
from workflows.imaging.atlas import mni_grid, template_mask_on_grid
from workflows.group.glm import Contrast, permutation_inference
from workflows.group.roi import table2

EFFECT_REGIONS = ("hippocampus", "amygdala", "thalamus")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    ds = tmp_path_factory.mktemp("group") / "ds"
    args = [str(ds), "--groups", "secure=16,avoidant=14,ambivalent=9", "--group-column",
            "attachment", "--derivatives-only", "--seed", "3", "-q"]
    for region in EFFECT_REGIONS:
        args += ["--effect", f"{region}=0.2"]
    assert run_cli("petbind-simulate", simulate_main, args) == 0
    out = ds / "derivatives" / "petbind"
    code = run_cli("petbind", petbind_main, [str(ds), str(out), "group", "--n-permutations",
                                             "100", "--covariates", "--voxel-fdr", "-q"])
    assert code == 0
    return out / "group"


def test_planted_effect_is_found_in_its_regions_only(planted):
    clusters = pd.read_csv(planted / "trc-carfentanil_contrast-secureGtOthers_clusters.tsv",
                           sep="\t")
    significant = clusters[clusters["significant"]]
    assert len(significant) >= 1
    for _, row in significant.iterrows():
        # the largest share of every significant cluster lies in a planted region
        top = row["regions"].split(";")[0]
        assert any(k in top.lower() for k in ("hippocampus", "amygdala", "thalamus")), row
    hit = " ".join(significant["regions"]).lower()
    assert "thalamus" in hit and "hippocampus" in hit
    opposite = pd.read_csv(planted / "trc-carfentanil_contrast-secureLtOthers_clusters.tsv",
                           sep="\t")
    assert not opposite["significant"].any()


def test_roi_anova_finds_the_planted_regions(planted):
    table = pd.read_csv(planted / "trc-carfentanil_desc-roi_stats.tsv", sep="\t")
    two = table[(table["design"] == "two-class") & (table["model"] == "group")]
    p = two.set_index("region")["p"]
    for region in EFFECT_REGIONS:
        assert p[region] < 0.01, (region, p[region])
    others = [r for r in ("insula", "ofc", "acc", "mcc", "pcc", "dorsalcaudate",
                          "ventralstriatum")]
    assert (p[others] < 0.05).sum() <= 2


def test_outputs_are_named_as_nilearn_and_fitlins_do(planted):
    base = "trc-carfentanil_contrast-secureGtOthers"
    for kind in ("t", "z", "p", "effect"):
        assert (planted / f"{base}_stat-{kind}_statmap.nii.gz").is_file()
    assert (planted / "trc-carfentanil_contrast-groupF_stat-F_statmap.nii.gz").is_file()
    assert (planted / "trc-carfentanil_report.html").is_file()
    tukey = pd.read_csv(planted / "trc-carfentanil_desc-roi_tukey.tsv", sep="\t")
    assert set(tukey["group1"]) | set(tukey["group2"]) == {"secure", "avoidant", "ambivalent"}


def test_group_methods_quote_the_settings_of_the_run(planted):
    text = (planted / "logs" / "CITATION.md").read_text()
    assert "100 Freedman-Lane permutations" in text and "q = 0.025" in text
    assert "Voxel-level FDR maps" in text and "(Chumbley et al., 2010)" in text
    assert "ten regions of interest" in text
    assert "Methods" in (planted / "trc-carfentanil_report.html").read_text()


def test_voxel_fdr_maps_equal_scipy_benjamini_hochberg(planted):
    # --voxel-fdr: the voxels kept are those whose BH-adjusted parametric p (scipy's
    # false_discovery_control over the brain mask) is at most q = 0.025
    import nibabel as nib
    base = planted / "trc-carfentanil_contrast-secureGtOthers"
    t = nib.load(f"{base}_stat-t_statmap.nii.gz").get_fdata()
    p = nib.load(f"{base}_stat-p_statmap.nii.gz").get_fdata()
    kept = nib.load(f"{base}_desc-voxelFDR_stat-t_statmap.nii.gz").get_fdata() != 0
    mask = t != 0
    expected = np.zeros_like(kept)
    expected[mask] = stats.false_discovery_control(p[mask]) <= 0.025
    assert expected.sum() > 100                   # the planted effect survives
    assert np.array_equal(kept, expected)


def test_any_atlas_gives_roi_values_and_statistics(planted, tmp_path):
    # --roi-atlas FILE: a label image in MNI space with index/name TSV beside it. Each label's
    # value is the mean of the participant's unsmoothed MNI map over its voxels (recomputed here
    # with nibabel), and the ANOVA finds the planted hippocampal effect but not the cerebellum's.
    import shutil
    import nibabel as nib
    from bids_app import names
    from workflows.imaging.atlas import atlas_on_grid, region_labels
    derivatives = planted.parent
    out = tmp_path / "petbind"
    shutil.copytree(derivatives, out, ignore=shutil.ignore_patterns("group"))
    grid = mni_grid(2.0)
    neuro = atlas_on_grid(grid)
    custom = np.zeros(grid.shape, dtype=np.int16)
    custom[np.isin(neuro, region_labels("hippocampus"))] = 7
    custom[np.isin(neuro, region_labels("cerebellargm"))] = 9
    atlas = tmp_path / "myatlas.nii.gz"
    nib.save(nib.Nifti1Image(custom, grid.affine), atlas)
    (tmp_path / "myatlas.tsv").write_text("index\tname\n7\thippo\n9\tcerebellum\n")
    ds = derivatives.parent.parent
    code = run_cli("petbind", petbind_main, [str(ds), str(out), "group", "--n-permutations", "10",
                                             "--covariates", "--roi-atlas", str(atlas), "-q"])
    assert code == 0
    values = pd.read_csv(out / "group" / "trc-carfentanil_desc-roi_bpnd.tsv", sep="\t")
    sub = values["participant_id"].iloc[0]
    bpnd = next(p for p in names.find(out, "mimap", ".nii.gz", trc="carfentanil",
                                      space=names.TEMPLATE_SPACE, desc=None, model="SRTM",
                                      meas="BPND") if p.name.startswith(f"{sub}_"))
    expected = nib.load(bpnd).get_fdata()[custom == 7].mean()
    assert values["hippo"].iloc[0] == pytest.approx(expected, rel=1e-5)
    table = pd.read_csv(out / "group" / "trc-carfentanil_desc-roi_stats.tsv", sep="\t")
    group_only = table[(table["model"] == "group") & (table["design"] == "three-class")]
    p = group_only.set_index("region")["p"]
    assert p["hippo"] < 0.01 and p["cerebellum"] > 0.01
    # the methods follow the settings of this run: 10 permutations, the atlas given
    text = (out / "group" / "logs" / "CITATION.md").read_text()
    assert "10 Freedman-Lane permutations" in text and "every label of the atlas" in text
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", "--roi-atlas",
                                             str(tmp_path / "nope.nii.gz"), "-q"]) == 66


def copy_with_scaled_maps(planted, out, factor, renamed):
    """The planted participant level copied to ``out`` (without its group folder), and beside
    each SRTM BPND map a copy times ``factor`` whose name has ``renamed`` for "model-SRTM_"."""
    import shutil
    import nibabel as nib
    from bids_app import names
    shutil.copytree(planted.parent, out, ignore=shutil.ignore_patterns("group"))
    for path in names.find(out, "mimap", ".nii.gz", trc="carfentanil", space="*", desc="*",
                           model="SRTM", meas="BPND") + names.find(
            out, "mimap", ".nii.gz", trc="carfentanil", space="*", desc=None, model="SRTM",
            meas="BPND"):
        img = nib.load(path)
        nib.save(nib.Nifti1Image(img.get_fdata() * factor, img.affine),
                 path.with_name(path.name.replace("model-SRTM_", renamed)))
    return out


def test_model_picks_whose_maps_are_analysed(planted, tmp_path):
    # A run with two voxelwise models leaves SRTM and SRTM2 maps side by side. --model
    # srtm2-bfm must analyse SRTM2's (here SRTM's x 1.1, so each ROI value is 1.1 times that
    # of the default run on SRTM's maps, the fixture's) and say so.
    out = copy_with_scaled_maps(planted, tmp_path / "petbind", 1.1, "model-SRTM2_")
    ds = planted.parent.parent.parent
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", "--model", "srtm2-bfm",
                                             "--n-permutations", "10", "-q"]) == 0
    tables = {model: pd.read_csv(folder / "trc-carfentanil_desc-roi_bpnd.tsv", sep="\t")
              .set_index("participant_id") for model, folder in (("srtm-bfm", planted),
                                                                 ("srtm2-bfm", out / "group"))}
    assert "SRTM2" in (out / "group" / "logs" / "CITATION.md").read_text()
    assert "SRTM2" not in (planted / "logs" / "CITATION.md").read_text()
    assert len(tables["srtm2-bfm"]) == 39
    ratio = tables["srtm2-bfm"]["thalamus"] / tables["srtm-bfm"]["thalamus"]
    np.testing.assert_allclose(ratio, 1.1, rtol=1e-4)


def test_pvc_and_roi_source_pick_what_is_analysed(planted, tmp_path):
    # Beside each participant's maps: maps corrected voxel by voxel (pvc-RBV, here the plain
    # maps x 1.2) and regional fits, plain and GTM-corrected (the regional truth x 0.8 and the
    # truth itself). --pvc analyses the corrected maps; --roi-source regional puts the regional
    # fits into Table 2 (GTM-corrected with --pvc); the settings record both.
    import json
    import shutil
    out = copy_with_scaled_maps(planted, tmp_path / "petbind", 1.2, "pvc-RBV_model-SRTM_")
    ds = planted.parent.parent.parent
    truth = pd.read_csv(ds / "derivatives" / "truth" / "regional_bpnd.tsv", sep="\t")
    for sub, rows in truth.groupby("participant_id"):
        fits = rows[["region", "BPND"]]
        folder = out / sub / "pet"
        fits.to_csv(folder / f"{sub}_trc-carfentanil_pvc-GTM_model-SRTM_kinpar.tsv", sep="\t",
                    index=False)
        fits.assign(BPND=0.8 * fits["BPND"]).to_csv(
            folder / f"{sub}_trc-carfentanil_model-SRTM_kinpar.tsv", sep="\t", index=False)

    def run(*options):
        shutil.rmtree(out / "group", ignore_errors=True)
        code = run_cli("petbind", petbind_main, [str(ds), str(out), "group",
                                                 "--n-permutations", "10", "-q", *options])
        table = pd.read_csv(out / "group" / "trc-carfentanil_desc-roi_bpnd.tsv", sep="\t") \
            if code == 0 else None
        return code, table
    plain = pd.read_csv(planted / "trc-carfentanil_desc-roi_bpnd.tsv", sep="\t")
    code, table = run("--pvc")
    assert code == 0
    np.testing.assert_allclose(table["thalamus"], 1.2 * plain["thalamus"], rtol=1e-4)
    settings = json.loads((out / "group" / "trc-carfentanil_desc-settings.json").read_text())
    assert settings["MapsPartialVolumeCorrection"] == "RBV"
    expected = truth[truth["region"] == "thalamus"].set_index("participant_id")["BPND"]
    for options, factor, source in ((["--pvc", "rbv", "--roi-source", "regional"], 1.0,
                                     "GTM-corrected"),
                                    (["--roi-source", "regional"], 0.8, "regional fits (")):
        code, table = run(*options)
        assert code == 0
        got = table.set_index("participant_id")["thalamus"]
        np.testing.assert_allclose(got, factor * expected[got.index], rtol=1e-5)  # TSV: 6 digits
        settings = json.loads((out / "group" / "trc-carfentanil_desc-settings.json")
                              .read_text())
        assert settings["ROISource"] == "regional" and source in settings["ROISourceFiles"]
    assert run("--pvc", "mg")[0] == 66               # no Mueller-Gaertner maps to analyse


def test_roi_statistics_equal_scipy():
    rng = np.random.default_rng(0)
    groups = ["a"] * 12 + ["b"] * 10 + ["c"] * 8
    values = pd.DataFrame({"g": groups, "age": rng.uniform(20, 50, 30),
                           "roi": rng.normal(1.0, 0.2, 30) + np.repeat([0, 0.15, 0.3],
                                                                        [12, 10, 8])})
    stats_table, tukey = table2(values, ["roi"], "g", "a", [[]])
    three = stats_table[stats_table["design"] == "three-class"].iloc[0]
    ref = stats.f_oneway(*[values.loc[values.g == k, "roi"] for k in "abc"])
    assert three["F"] == pytest.approx(ref.statistic, rel=1e-9)
    assert three["p"] == pytest.approx(ref.pvalue, rel=1e-9)
    two = stats_table[stats_table["design"] == "two-class"].iloc[0]
    t_ref = stats.ttest_ind(values.loc[values.g == "a", "roi"], values.loc[values.g != "a", "roi"])
    assert two["p"] == pytest.approx(t_ref.pvalue, rel=1e-9)
    assert two["F"] == pytest.approx(t_ref.statistic ** 2, rel=1e-9)
    hsd = stats.tukey_hsd(*[values.loc[values.g == k, "roi"] for k in "abc"])
    for _, row in tukey.iterrows():
        i, j = "abc".index(row["group1"]), "abc".index(row["group2"])
        assert row["p-adj"] == pytest.approx(hsd.pvalue[i, j], abs=2e-3)


def test_roi_anova_with_covariates_equals_a_nested_model_f_test():
    # Type II F of the group with a numeric and a categorical covariate: the F test of the full
    # model (group, age, sex) against the model without the group, as statsmodels computes it
    # on designs built here with pandas' own dummy coding
    import statsmodels.api as sm
    rng = np.random.default_rng(3)
    n = 30
    values = pd.DataFrame({"g": rng.choice(["a", "b", "c"], n), "age": rng.uniform(20, 50, n),
                           "sex": rng.choice(["F", "M"], n)})
    values["roi"] = rng.normal(1.0, 0.2, n) + 0.01 * values["age"] + 0.2 * (values["g"] == "c")
    stats_table, _ = table2(values, ["roi"], "g", "a", [["age", "sex"]])
    row = stats_table[(stats_table["design"] == "three-class")].iloc[0]
    covariates = pd.get_dummies(values[["age", "sex"]], drop_first=True, dtype=float)
    reduced = sm.add_constant(covariates)
    full = pd.concat([reduced, pd.get_dummies(values["g"], drop_first=True, dtype=float)],
                     axis=1)
    fit_full, fit_reduced = sm.OLS(values["roi"], full).fit(), sm.OLS(values["roi"],
                                                                      reduced).fit()
    f, p, df = fit_full.compare_f_test(fit_reduced)
    assert row["F"] == pytest.approx(f, rel=1e-9) and row["p"] == pytest.approx(p, rel=1e-9)
    eta = (fit_reduced.ssr - fit_full.ssr) / fit_reduced.ssr
    assert row["partial_eta2"] == pytest.approx(eta, rel=1e-9)
    assert row["df_group"] == df == 2 and row["df_resid"] == n - 5


def test_null_data_false_cluster_rate_is_nominal():
    # Smooth Gaussian null maps (FWHM 8 mm at 2 mm, as the smoothed BPND maps) for the seed's
    # 39 participants, 10 repetitions: runs with any cluster-FDR-significant cluster at q 0.025
    # are binomial(10, <= 0.025) under the null; 3 or more would happen with p < 0.002.
    grid = mni_grid(4.0)                    # 4 mm keeps the test short; smoothness in voxels
    mask = template_mask_on_grid(grid)
    groups = np.array([1] * 16 + [0] * 23, dtype=float)
    x = np.column_stack([np.ones(39), groups])
    rng = np.random.default_rng(1)
    false_runs = 0
    for rep in range(10):
        noise = rng.standard_normal((39, *grid.shape))
        maps = np.stack([ndimage.gaussian_filter(m, 8 / 2.3548 / 4) for m in noise])
        y = maps[:, mask]
        inf = permutation_inference(x, y, mask, Contrast("t", np.array([0.0, 1.0])), [0],
                                    n_permutations=100, cluster_p=0.01, q=0.025, seed=rep)
        false_runs += bool(inf.cluster_significant.any())
    assert false_runs <= 2


def test_small_samples_use_every_ordering_the_exact_randomisation_test():
    # 2 vs 3 participants: 5! = 120 orderings, fewer than the permutations asked for, so every
    # ordering is used once. The permutation p of the t statistic at a voxel is then the exact
    # randomisation p: the share of the C(5, 2) = 10 ways to label 2 of 5 as group 1 whose
    # two-sample t (scipy, pooled variance) is at least the observed one, whatever the seed.
    from itertools import combinations
    y = np.array([[3.1], [2.7], [1.2], [0.9], [1.6]])
    labels = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    x = np.column_stack([np.ones(5), labels])
    mask = np.ones((1, 1, 1), dtype=bool)
    observed = stats.ttest_ind(y[labels == 1, 0], y[labels == 0, 0]).statistic
    null = []
    for pair in combinations(range(5), 2):
        g = np.isin(np.arange(5), pair)
        null.append(stats.ttest_ind(y[g, 0], y[~g, 0]).statistic)
    exact_p = np.mean(np.array(null) >= observed - 1e-12)
    for seed in (0, 7):
        inf = permutation_inference(x, y, mask, Contrast("t", np.array([0.0, 1.0])), [0],
                                    n_permutations=1000, cluster_p=0.5, seed=seed)
        assert inf.exact and inf.n_permutations == 119
        assert inf.stat[0] == pytest.approx(observed, rel=1e-10)
        assert inf.voxel_p_perm_fwe[0] == pytest.approx(exact_p, abs=1e-6)
    inf = permutation_inference(x, y, mask, Contrast("t", np.array([0.0, 1.0])), [0],
                                n_permutations=50, cluster_p=0.5, seed=0)
    assert not inf.exact and inf.n_permutations == 50


def test_models_with_no_residual_degrees_of_freedom_are_skipped_not_fatal(tmp_path):
    # 2 + 2 participants with age and sex: group + age + sex has as many parameters as
    # participants, so no error variance can be estimated. The unadjusted analyses are still
    # run; the adjusted ones are reported as skipped (voxelwise) or NaN (ROI table).
    import json
    ds = tmp_path / "ds"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "4", "--derivatives-only", "--seed", "4", "-q"]) == 0
    out = ds / "derivatives" / "petbind"
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", "--covariates", "age",
                                             "sex", "--n-permutations", "100", "-q"]) == 0
    group_dir = out / "group"
    assert (group_dir / "trc-carfentanil_contrast-secureGtOthers_stat-t_statmap.nii.gz").is_file()
    assert not list(group_dir.glob("*contrast-secureGtOthersAdj_*"))
    settings = json.loads((group_dir / "trc-carfentanil_desc-settings.json").read_text())
    assert "no residual degrees of freedom" in settings["SkippedContrasts"]["secureGtOthersAdj"]
    assert settings["PermutationsUsed"]["secureGtOthers"] == 23      # 4! - 1: the exact test
    table = pd.read_csv(group_dir / "trc-carfentanil_desc-roi_stats.tsv", sep="\t")
    full = table[table["model"] == "group + age + sex"]
    assert full["F"].isna().all() and (full["df_resid"] == 0).all()
    assert table.loc[table["model"] == "group", "F"].notna().all()


def test_tfce_finds_a_planted_blob_and_only_there():
    # 40 participants, smooth noise (FWHM 8 mm, SD 1) on the 4 mm MNI grid, +1.5 in a 12 mm-radius
    # ball for the first 20 (expected t about 4.7): TFCE with permutation FWE (one-sided,
    # group 1 > group 2) is significant in the ball, nowhere 30 mm or more away from it, and
    # never for the opposite direction.
    import nibabel as nib
    from workflows.group.glm import tfce_inference
    grid = mni_grid(4.0)
    mask = template_mask_on_grid(grid)
    rng = np.random.default_rng(5)
    n = 40
    noise = np.stack([ndimage.gaussian_filter(rng.standard_normal(grid.shape), 8 / 2.3548 / 4)
                      for _ in range(n)])
    noise /= noise[:, mask].std()
    world = grid.world_coordinates().reshape(*grid.shape, 3)
    centre = np.array([20.0, -20.0, 10.0])
    distance = np.linalg.norm(world - centre, axis=-1)
    groups = np.r_[np.ones(20), np.zeros(20)]
    maps = noise + 1.5 * groups[:, None, None, None] * (distance <= 12)
    x = np.column_stack([np.ones(n), groups])
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), grid.affine)
    y = maps[:, mask]
    tfce, p = tfce_inference(x, y, mask_img, Contrast("gt", np.array([0.0, 1.0])), [0],
                             n_permutations=50, seed=1)
    d = distance[mask]
    assert p[d <= 12][np.argmax(tfce[d <= 12])] < 0.05
    assert (p[d >= 30] >= 0.05).all()
    assert tfce[d <= 6].mean() > tfce[d >= 30].mean()
    _, p_opposite = tfce_inference(x, y, mask_img, Contrast("lt", np.array([0.0, -1.0])), [0],
                                   n_permutations=50, seed=1)
    assert (p_opposite[d <= 12] >= 0.05).all()


@pytest.mark.parametrize("kind", ["t", "F"])
def test_fast_permutations_equal_explicit_freedman_lane_refits(kind):
    # Freedman-Lane: permute the residuals of the nuisance-only model, add back its fit, refit
    # the full model. The engine's batched shortcut (no permuted copy of the data) must give the
    # same statistic as doing exactly that, voxel by voxel.
    from workflows.group.glm import _FastGLM, statistic
    rng = np.random.default_rng(8)
    n, v = 25, 300
    groups = rng.integers(0, 3, n)
    x = np.column_stack([np.ones(n), groups == 1, groups == 2, rng.normal(40, 10, n)]).astype(float)
    y = rng.normal(size=(n, v)) + 0.3 * x[:, [1]]
    if kind == "t":
        contrast, nuisance = Contrast("t", np.array([0.0, 1.0, 0.0, 0.0])), [0, 2, 3]
    else:
        contrast, nuisance = Contrast("F", np.array([[0.0, 1, 0, 0], [0, 0, 1, 0]])), [0, 3]
    z = x[:, nuisance]
    fitted = z @ np.linalg.lstsq(z, y, rcond=None)[0]
    resid = y - fitted
    perms = [None] + [rng.permutation(n) for _ in range(6)]
    fast = _FastGLM(x, y, contrast, nuisance).batch(perms)
    for row, perm in zip(fast, perms):
        permuted = y if perm is None else fitted + resid[perm]
        explicit = statistic(x, permuted, contrast)[0]
        np.testing.assert_allclose(row, explicit, rtol=1e-9, atol=1e-12)

def test_several_sessions_need_session_label_and_it_picks_that_sessions_maps(tmp_path, capsys):
    # Two sessions, the second with half the receptors blocked (occupancy 0.5). Without
    # --session-label the group level cannot know which to compare: a usage error listing both
    # (exit 64), never a silent pick. With it, the ROI values are that session's: blocked
    # BPND = (1 - 0.5) x baseline BPND for the same participants.
    import json
    ds = tmp_path / "ds"
    assert run_cli("petbind-simulate", simulate_main, [
        str(ds), "--n-subjects", "4", "--derivatives-only", "--seed", "4", "--sessions",
        "baseline,blocked", "--occupancy", "0.5", "-q"]) == 0
    out = ds / "derivatives" / "petbind"
    common = ["--covariates", "--n-permutations", "10", "-q"]
    capsys.readouterr()
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *common]) == 64
    message = capsys.readouterr().err
    assert "baseline, blocked" in message and "--session-label" in message
    assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *common,
                                             "--session-label", "ses-nope"]) == 64
    assert "sessions: baseline, blocked" in capsys.readouterr().err
    assert not (out / "group").exists()
    tables = {}
    for session in ("baseline", "blocked"):
        assert run_cli("petbind", petbind_main, [str(ds), str(out), "group", *common,
                                                 "--session-label", session]) == 0
        group_dir = out / "group"
        settings = json.loads((group_dir / "trc-carfentanil_desc-settings.json").read_text())
        assert settings["Session"] == session
        tables[session] = pd.read_csv(group_dir / "trc-carfentanil_desc-roi_bpnd.tsv",
                                      sep="\t").set_index("participant_id")
    assert len(tables["blocked"]) == 4
    ratio = tables["blocked"]["thalamus"] / tables["baseline"]["thalamus"]
    np.testing.assert_allclose(ratio, 0.5, atol=0.05)


def test_sign_flip_test_is_exact_for_small_samples_and_nominal_under_the_null():
    # Paired differences: with 5 participants every one of the 2^5 - 1 sign flips is used (the
    # exact test), and a voxel whose 5 differences are all positive has an FWE p of 1/32 at
    # best, as enumeration says. Under the null (smooth Gaussian differences, 12 participants,
    # 10 repetitions), runs with a cluster-FDR-significant cluster are binomial(10, <= 0.025).
    from workflows.group.glm import sign_flip_inference
    grid = mni_grid(4.0)
    mask = template_mask_on_grid(grid)
    rng = np.random.default_rng(5)
    small = rng.standard_normal((5, int(mask.sum()))) + 3.0
    inf = sign_flip_inference(small, mask, n_permutations=1000, cluster_p=0.05)
    assert inf.exact and inf.n_permutations == 31
    assert inf.voxel_p_perm_fwe.min() >= 1 / 32 - 1e-12
    t = small.mean(0) / (small.std(0, ddof=1) / np.sqrt(5))
    np.testing.assert_allclose(inf.stat, t, rtol=1e-10)
    false_runs = 0
    for rep in range(10):
        noise = rng.standard_normal((12, *grid.shape))
        d = np.stack([ndimage.gaussian_filter(m, 8 / 2.3548 / 4) for m in noise])[:, mask]
        inf = sign_flip_inference(d, mask, n_permutations=100, cluster_p=0.01, seed=rep)
        false_runs += bool(inf.cluster_significant.any())
    assert false_runs <= 2
