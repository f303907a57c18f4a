"""The group level: planted effects found where they are, null data controlled, ROI statistics
equal to independent routines."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage, stats

from bids_app.cli.common import run_cli
from bids_app.cli.run import main as petbind_main
from bids_app.cli.simulate import main as simulate_main
from workflows.atlas import mni_grid, template_mask_on_grid
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
                                             "100", "--covariates", "-q"])
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
