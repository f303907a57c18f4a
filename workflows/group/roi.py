"""ROI statistics as the seed study's Table 2: per-group n, mean and SD, ANOVA F, p and partial
eta squared for group alone, group + age, group + age + sex (any covariates), and Tukey HSD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multicomp import pairwise_tukeyhsd


def roi_means(maps: np.ndarray, labels: np.ndarray, regions: dict[str, list[int]]
              ) -> np.ndarray:
    """(n_subjects, n_regions) mean map value per region; maps (n_subjects, *grid)."""
    flat = maps.reshape(maps.shape[0], -1)
    lab = labels.ravel()
    out = np.full((maps.shape[0], len(regions)), np.nan)
    for j, ids in enumerate(regions.values()):
        sel = np.isin(lab, ids)
        if sel.any():
            out[:, j] = flat[:, sel].mean(axis=1)
    return out


def anova_table(data: pd.DataFrame, value: str, group: str, covariates: list[str]
                ) -> dict[str, float]:
    """F, p and partial eta^2 of the group term (type II sums of squares); NaN when the model
    leaves no residual degrees of freedom (as many parameters as participants)."""
    terms = [f"C({group})"] + [f"Q('{c}')" if data[c].dtype.kind in "fi" else f"C({c})"
                               for c in covariates]
    model = smf.ols(f"Q('{value}') ~ " + " + ".join(terms), data=data).fit()
    if model.df_resid < 1:
        return {"F": np.nan, "p": np.nan, "partial_eta2": np.nan,
                "df_group": float(data[group].nunique() - 1), "df_resid": 0.0}
    table = anova_lm(model, typ=2)
    row = table.loc[f"C({group})"]
    ss_res = table.loc["Residual", "sum_sq"]
    return {"F": float(row["F"]), "p": float(row["PR(>F)"]),
            "partial_eta2": float(row["sum_sq"] / (row["sum_sq"] + ss_res)),
            "df_group": float(row["df"]), "df_resid": float(table.loc["Residual", "df"])}


def table2(values: pd.DataFrame, regions: list[str], group: str, reference: str,
           covariate_sets: list[list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``values``: one row per participant with the group column, covariates and one column per
    region. Returns the statistics table and the Tukey HSD table (three or more classes)."""
    rows, tukey_rows = [], []
    levels = list(dict.fromkeys(values[group]))
    two = values.assign(**{"_two": np.where(values[group] == reference, reference,
                                            "others")})
    for region in regions:
        base = {"region": region}
        for level in levels:
            v = values.loc[values[group] == level, region]
            base[f"n_{level}"] = int(v.notna().sum())
            base[f"mean_{level}"] = float(v.mean())
            base[f"sd_{level}"] = float(v.std(ddof=1))
        for design, frame, term in (("two-class", two, "_two"), ("three-class", values, group)):
            if design == "three-class" and len(levels) < 3:
                continue
            for cov in covariate_sets:
                label = "group" + "".join(f" + {c}" for c in cov)
                stats_ = anova_table(frame.dropna(subset=[region] + cov), region, term, cov)
                rows.append({**base, "design": design, "model": label, **stats_})
        if len(levels) >= 3:
            clean = values.dropna(subset=[region])
            result = pairwise_tukeyhsd(clean[region], clean[group])
            summary = pd.DataFrame(result.summary().data[1:],
                                   columns=result.summary().data[0])
            summary.insert(0, "region", region)
            tukey_rows.append(summary)
    tukey = pd.concat(tukey_rows, ignore_index=True) if tukey_rows else pd.DataFrame()
    return pd.DataFrame(rows), tukey
