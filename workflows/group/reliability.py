"""Test-retest reliability of a measure taken twice in each participant, for many units
(regions or voxels) at once: absolute variability, within-subject coefficient of variation,
intraclass correlations and the standard error of measurement, with Bland-Altman's bias and
limits of agreement.

With test t and retest r of n participants (k = 2 sessions), from the two-way ANOVA of subject x
session: MS_subjects = 2 var(m) with m = (t + r) / 2 (ddof 1), MS_error = var(d) / 2 with
d = r - t (ddof 1), and the one-way within-subject mean square MS_within = mean(d^2) / 2. Then
ICC(3,1) = (MS_subjects - MS_error) / (MS_subjects + MS_error) (two-way mixed, consistency) and
ICC(1,1) = (MS_subjects - MS_within) / (MS_subjects + MS_within) (one-way random) (Shrout and
Fleiss 1979). Pure numerics: arrays (participants, units) in, one value per unit out.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

STATISTICS = ("mean", "bias", "loa_low", "loa_high", "variability_percent", "wscv_percent",
              "icc_3_1", "icc_1_1", "sem")


def reliability(test: ArrayLike, retest: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """Reliability statistics per unit (column) of two (participants, units) arrays; rows with a
    non-finite value in either session are left out of that unit. Units with fewer than 2
    participants give NaN.

    - mean: the grand mean of both sessions;
    - bias: mean of retest - test; loa_low, loa_high: bias -/+ 1.96 SD of the difference;
    - variability_percent: mean over participants of |r - t| / ((r + t) / 2), in %;
    - wscv_percent: within-subject SD sqrt(mean((r - t)^2) / 2) over the grand mean, in %;
    - icc_3_1, icc_1_1: see the module docstring;
    - sem: standard error of measurement, sqrt(MS_error), in the measure's units.
    """
    t = np.atleast_2d(np.asarray(test, dtype=np.float64))
    r = np.atleast_2d(np.asarray(retest, dtype=np.float64))
    if t.shape != r.shape:
        raise ValueError(f"test {t.shape} and retest {r.shape} arrays differ in shape")
    ok = np.isfinite(t) & np.isfinite(r)
    n = ok.sum(axis=0).astype(np.float64)
    t0, r0 = np.where(ok, t, 0.0), np.where(ok, r, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d, m = r0 - t0, (r0 + t0) / 2
        mean = m.sum(axis=0) / n
        bias = d.sum(axis=0) / n
        var_d = np.where(ok, (d - bias) ** 2, 0.0).sum(axis=0) / (n - 1)
        var_m = np.where(ok, (m - mean) ** 2, 0.0).sum(axis=0) / (n - 1)
        ms_subjects, ms_error = 2 * var_m, var_d / 2
        ms_within = (d ** 2).sum(axis=0) / n / 2
        relative = np.where(ok & (m != 0), np.abs(d) / np.where(m != 0, m, 1.0), 0.0)
        out = {
            "mean": mean, "bias": bias,
            "loa_low": bias - 1.96 * np.sqrt(var_d), "loa_high": bias + 1.96 * np.sqrt(var_d),
            "variability_percent": 100 * relative.sum(axis=0) / n,
            "wscv_percent": 100 * np.sqrt(ms_within) / mean,
            "icc_3_1": (ms_subjects - ms_error) / (ms_subjects + ms_error),
            "icc_1_1": (ms_subjects - ms_within) / (ms_subjects + ms_within),
            "sem": np.sqrt(ms_error),
        }
    few = n < 2
    return {k: np.where(few, np.nan, v) for k, v in out.items()}
