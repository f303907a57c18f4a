"""ROI statistics as the seed study's Table 2: per-group n, mean and SD, ANOVA F, p and partial
eta squared for group alone, group + age, group + age + sex (any covariates), and Tukey HSD."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
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


def _indicators(values: pd.Series) -> np.ndarray:
    """Treatment coding: one 0/1 column per level but the first (levels sorted)."""
    levels = sorted(values.unique())
    return np.column_stack([(values == level).to_numpy(float) for level in levels[1:]]) \
        if len(levels) > 1 else np.zeros((len(values), 0))


def _rss_and_rank(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    return float(resid @ resid), int(np.linalg.matrix_rank(x))


def anova_table(data: pd.DataFrame, value: str, group: str, covariates: list[str]
                ) -> dict[str, float]:
    """F, p and partial eta^2 of the group term with type II sums of squares (the group's sum
    of squares given the covariates: no interactions); NaN when the model leaves no residual
    degrees of freedom (as many parameters as participants). Numeric covariates enter as they
    are, others as indicators; the design matrices are built from the values, so no name from
    the data is ever evaluated."""
    y = data[value].to_numpy(float)
    covariate_columns = [data[[c]].to_numpy(float) if data[c].dtype.kind in "fi"
                         else _indicators(data[c]) for c in covariates]
    reduced = np.column_stack([np.ones(len(y)), *covariate_columns])
    full = np.column_stack([reduced, _indicators(data[group])])
    rss_full, rank_full = _rss_and_rank(full, y)
    rss_reduced, rank_reduced = _rss_and_rank(reduced, y)
    df_group, df_resid = rank_full - rank_reduced, len(y) - rank_full
    if df_resid < 1:
        return {"F": np.nan, "p": np.nan, "partial_eta2": np.nan,
                "df_group": float(data[group].nunique() - 1), "df_resid": 0.0}
    ss_group = max(rss_reduced - rss_full, 0.0)
    f = (ss_group / df_group) / (rss_full / df_resid)
    return {"F": float(f), "p": float(stats.f.sf(f, df_group, df_resid)),
            "partial_eta2": float(ss_group / (ss_group + rss_full)),
            "df_group": float(df_group), "df_resid": float(df_resid)}


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
