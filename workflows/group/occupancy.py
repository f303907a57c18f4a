"""Receptor occupancy from a baseline and a blocked scan's BPND (reference-region form).

A drug that occupies a fraction ``occ`` of the receptors everywhere lowers BPND by that fraction
in every region: ``BPND_blocked = (1 - occ) BPND_baseline``, if the reference region has no
specific binding and the non-displaceable uptake is the same in both scans. So

- per region: ``occ = 1 - BPND_blocked / BPND_baseline``;
- per participant, from all regions together (a Lassen-type plot in BPND form): the regression of
  ``BPND_baseline - BPND_blocked`` on ``BPND_baseline`` across regions, whose slope through the
  origin is the occupancy. Fitted with an intercept too: a non-zero intercept flags binding in
  the reference region that the drug does not displace (intercept occ BP_ref / (1 + BP_ref)).
  Binding there that the drug displaces as it does the target's, or a change of f_ND, scales
  every region alike: the plot stays a line through the origin and its slope is biased, which
  no reference-tissue method can see (cf. the V_T form of Cunningham et al. 2010);
- across participants: ``occ = Omax C / (C + EC50)`` against the exposure C (dose or plasma
  concentration), EC50 fitted on the log scale (positive), Omax fixed at 1 unless fitted.

Pure numerics: arrays in, numbers out; confidence intervals are 95 % two-sided (t quantiles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

CONFIDENCE = 0.95


def regional_occupancy(baseline: ArrayLike, blocked: ArrayLike,
                       baseline_se: ArrayLike | None = None,
                       blocked_se: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy ``1 - blocked / baseline`` per region and its standard error by the delta
    method from the two BPNDs' standard errors (same units as BPND; NaN where not given),
    the two scans' errors taken as independent. NaN where the baseline BPND is not positive."""
    base = np.asarray(baseline, dtype=np.float64)
    block = np.asarray(blocked, dtype=np.float64)
    positive = base > 0
    ratio = np.divide(block, base, out=np.full(base.shape, np.nan), where=positive)
    se_base = np.full(base.shape, np.nan) if baseline_se is None else np.asarray(
        baseline_se, dtype=np.float64)
    se_block = np.full(base.shape, np.nan) if blocked_se is None else np.asarray(
        blocked_se, dtype=np.float64)
    # var(b/a) ~ (se_b / a)^2 + (b se_a / a^2)^2
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        se = np.sqrt((se_block / base) ** 2 + (ratio * se_base / base) ** 2)
    return 1.0 - ratio, np.where(positive, se, np.nan)


@dataclass(frozen=True)
class OccupancyPlot:
    """A participant's Lassen-type plot in BPND form (y = baseline - blocked, x = baseline)."""

    occupancy: float              # slope through the origin
    occupancy_low: float          # its 95 % confidence limits
    occupancy_high: float
    slope: float                  # the fit with an intercept: slope, intercept (BPND units)
    intercept: float
    intercept_low: float
    intercept_high: float
    intercept_p: float            # two-sided p of intercept = 0
    n_regions: int


def occupancy_plot(baseline: ArrayLike, blocked: ArrayLike) -> OccupancyPlot:
    """The slope through the origin of ``baseline - blocked`` on ``baseline`` (ordinary least
    squares over the regions with finite values), and the fit with an intercept, with t-based
    confidence intervals. Needs three regions or more."""
    x_all = np.asarray(baseline, dtype=np.float64)
    y_all = x_all - np.asarray(blocked, dtype=np.float64)
    finite = np.isfinite(x_all) & np.isfinite(y_all)
    x, y = x_all[finite], y_all[finite]
    n = x.size
    if n < 3 or np.ptp(x) == 0:
        raise ValueError(f"the occupancy plot needs 3 regions or more with different baseline "
                         f"BPND, got {n}")
    q = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)
    sxx = x @ x
    occ = (x @ y) / sxx
    se_occ = np.sqrt(((y - occ * x) @ (y - occ * x)) / (n - 1) / sxx)
    design = np.column_stack([np.ones(n), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = n - 2
    cov = (resid @ resid) / dof * np.linalg.inv(design.T @ design) if dof else np.full(
        (2, 2), np.nan)
    se_icpt = np.sqrt(cov[0, 0])
    q2 = stats.t.ppf(0.5 + CONFIDENCE / 2, dof) if dof else np.nan
    p_icpt = float(2 * stats.t.sf(abs(coef[0]) / se_icpt, dof)) if se_icpt > 0 else (
        0.0 if coef[0] != 0 else 1.0)
    return OccupancyPlot(float(occ), float(occ - q * se_occ), float(occ + q * se_occ),
                         float(coef[1]), float(coef[0]), float(coef[0] - q2 * se_icpt),
                         float(coef[0] + q2 * se_icpt), p_icpt, int(n))


@dataclass(frozen=True)
class ExposureFit:
    """The exposure-occupancy curve ``occ = omax C / (C + ec50)``."""

    ec50: float                   # exposure units
    ec50_low: float               # 95 % confidence limits (from log EC50's standard error)
    ec50_high: float
    omax: float
    omax_se: float                # NaN where Omax was fixed
    omax_fitted: bool
    n: int

    def predict(self, exposure: ArrayLike) -> np.ndarray:
        c = np.asarray(exposure, dtype=np.float64)
        return self.omax * c / (c + self.ec50)


def fit_exposure_occupancy(exposure: ArrayLike, occupancy: ArrayLike,
                           fit_omax: bool = False) -> ExposureFit:
    """Least squares fit of the Emax curve to participants' occupancy against exposure (dose or
    concentration, > 0), EC50 on the log scale so that it stays positive; Omax fixed at 1 unless
    ``fit_omax``. Confidence limits from the Jacobian's covariance (t quantiles)."""
    c = np.asarray(exposure, dtype=np.float64)
    occ = np.asarray(occupancy, dtype=np.float64)
    keep = np.isfinite(c) & np.isfinite(occ) & (c > 0)
    c, occ = c[keep], occ[keep]
    n_params = 2 if fit_omax else 1
    if c.size < n_params + 2:
        raise ValueError(f"the exposure-occupancy fit needs {n_params + 2} participants or more "
                         f"with a positive exposure and an occupancy, got {c.size}")

    def model(p: np.ndarray) -> np.ndarray:
        omax = p[1] if fit_omax else 1.0
        return omax * c / (c + np.exp(p[0]))

    inside = (occ > 0.02) & (occ < 0.98)           # start: EC50 = C (1 - occ) / occ, median
    start = np.log(np.median(c[inside] * (1 - occ[inside]) / occ[inside])) if inside.any() \
        else np.log(np.median(c))
    p0 = np.array([start, 1.0])[:n_params]
    result = optimize.least_squares(lambda p: model(p) - occ, p0, method="lm")
    dof = c.size - n_params
    s2 = (result.fun @ result.fun) / dof
    jac = result.jac
    cov = s2 * np.linalg.pinv(jac.T @ jac)
    q = stats.t.ppf(0.5 + CONFIDENCE / 2, dof)
    log_ec50, se_log = result.x[0], np.sqrt(cov[0, 0])
    return ExposureFit(float(np.exp(log_ec50)), float(np.exp(log_ec50 - q * se_log)),
                       float(np.exp(log_ec50 + q * se_log)),
                       float(result.x[1]) if fit_omax else 1.0,
                       float(np.sqrt(cov[1, 1])) if fit_omax else float("nan"), fit_omax,
                       int(c.size))
