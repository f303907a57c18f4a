"""Voxelwise GLM with nonparametric (permutation) inference, cluster-level FDR as SPM's
topological FDR, voxel-level FDR, and cluster FWE.

Maps are (n_subjects, n_voxels) arrays inside a mask. Permutations follow Freedman & Lane (1983):
the data are residualised on the nuisance part of the design (intercept and covariates), the
residuals permuted and added back, and the full model refitted, which keeps the covariates'
effect out of the null distribution.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, stats


@dataclass
class Contrast:
    name: str
    weights: NDArray[np.float64]        # (k,) for a t contrast or (m, k) for an F contrast

    @property
    def is_f(self) -> bool:
        return self.weights.ndim == 2


def fit_ols(x: NDArray, y: NDArray) -> tuple[NDArray, NDArray, int]:
    """OLS for all voxels: betas (k, V), residual variance (V,), degrees of freedom."""
    pinv = np.linalg.pinv(x)
    beta = pinv @ y
    resid = y - x @ beta
    dof = x.shape[0] - np.linalg.matrix_rank(x)
    sigma2 = np.einsum("ij,ij->j", resid, resid) / dof
    return beta, sigma2, dof


def statistic(x: NDArray, y: NDArray, contrast: Contrast) -> tuple[NDArray, NDArray, int, int]:
    """t (or F) per voxel, the effect (contrast of betas), and the degrees of freedom."""
    beta, sigma2, dof = fit_ols(x, y)
    xtx_inv = np.linalg.pinv(x.T @ x)
    c = contrast.weights
    if not contrast.is_f:
        effect = c @ beta
        se = np.sqrt(np.maximum(c @ xtx_inv @ c * sigma2, 1e-30))
        return effect / se, effect, 1, dof
    cb = c @ beta                                              # (m, V)
    middle = np.linalg.pinv(c @ xtx_inv @ c.T)
    rank = np.linalg.matrix_rank(c)
    f = np.einsum("iv,ij,jv->v", cb, middle, cb) / rank / np.maximum(sigma2, 1e-30)
    return f, np.sqrt(np.einsum("iv,iv->v", cb, cb)), rank, dof


def p_values(stat: NDArray, contrast: Contrast, df1: int, dof: int) -> NDArray:
    """One-sided p for t (the contrast's direction), p for F."""
    if contrast.is_f:
        return stats.f.sf(stat, df1, dof)
    return stats.t.sf(stat, dof)


def z_from_p(p: NDArray) -> NDArray:
    return stats.norm.isf(np.clip(p, 1e-300, 1.0))


def clusters(mask: NDArray[np.bool_], supra: NDArray[np.bool_]) -> tuple[NDArray, int]:
    """Label supra-threshold voxels (flat, inside ``mask``) into 26-connected clusters."""
    volume = np.zeros(mask.shape, dtype=bool)
    volume[mask] = supra
    labels, n = ndimage.label(volume, structure=np.ones((3, 3, 3)))
    return labels, n


def bh_fdr(p: NDArray, q: float) -> tuple[NDArray, NDArray]:
    """Benjamini-Hochberg: significant mask and adjusted q-values."""
    p = np.asarray(p, dtype=float)
    if p.size == 0:
        return np.zeros(0, bool), np.zeros(0)
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q_values = np.empty_like(p)
    q_values[order] = np.minimum(adjusted, 1.0)
    return q_values <= q, q_values


@dataclass
class Inference:
    stat: NDArray            # t or F per voxel in the mask
    effect: NDArray
    p: NDArray               # parametric voxel p
    z: NDArray
    cluster_labels: NDArray  # volume of cluster indices (0 = none)
    cluster_sizes: NDArray   # (n_clusters,)
    cluster_p_unc: NDArray   # nonparametric uncorrected cluster p
    cluster_q: NDArray       # BH-adjusted
    cluster_p_fwe: NDArray   # from the max cluster size distribution
    cluster_significant: NDArray
    voxel_p_perm_fwe: NDArray
    voxel_fdr_significant: NDArray
    threshold: float         # cluster-forming statistic threshold
    df: tuple[int, int]
    n_permutations: int      # permutations used (all n! - 1 when exact)
    exact: bool              # every ordering of the participants was used


class _FastGLM:
    """The GLM statistic for many permutations of Freedman-Lane residuals without copying the
    data: with X = Q R and the nuisance fit Z g, every quantity needed is a small matrix (rows
    permuted) times the residuals. A batch of permutations is one matrix product that reads the
    residuals once: (V, n) times (n, batch x (k + m)). Voxel arrays are stored voxel-major."""

    def __init__(self, x: NDArray, y: NDArray, contrast: Contrast, nuisance: list[int]) -> None:
        self.q, r = np.linalg.qr(x)
        self.contrast = contrast
        c = np.atleast_2d(contrast.weights)
        self.c_rinv = c @ np.linalg.pinv(r)                   # C R^-1: beta contrast from Q'y
        self.middle = np.linalg.pinv(self.c_rinv @ self.c_rinv.T)
        self.rank = np.linalg.matrix_rank(c)
        self.dof = x.shape[0] - np.linalg.matrix_rank(x)
        z = x[:, nuisance] if nuisance else np.zeros((x.shape[0], 0))
        if z.shape[1]:
            self.qz, _ = np.linalg.qr(z)
        else:
            self.qz = np.zeros((x.shape[0], 0))
        fitted_coef = self.qz.T @ y                           # (m, V)
        resid = y - self.qz @ fitted_coef
        self.fitted_t = np.ascontiguousarray(fitted_coef.T)   # (V, m)
        self.resid_t = np.ascontiguousarray(resid.T)          # (V, n)
        self.ss_fitted = np.einsum("vm,vm->v", self.fitted_t, self.fitted_t)
        self.ss_resid = np.einsum("vn,vn->v", self.resid_t, self.resid_t)
        self.q_fit_t = self.fitted_t @ (self.q.T @ self.qz).T  # (V, k): Q' (fitted part)

    def as_float32(self) -> "_FastGLM":
        """Single precision for the permutation loop (null distributions only): halves the
        memory traffic; statistics agree to about 1e-6 relative."""
        for name in ("q", "qz", "resid_t", "fitted_t", "q_fit_t", "ss_fitted", "ss_resid",
                     "c_rinv", "middle"):
            setattr(self, name, getattr(self, name).astype(np.float32))
        return self

    def batch(self, perms: list[NDArray | None]) -> NDArray:
        """(len(perms), V) statistics; None is the identity."""
        k, m = self.q.shape[1], self.qz.shape[1]
        rows = [slice(None) if p is None else np.argsort(p) for p in perms]
        # y_perm = fitted + resid[perm]; M' resid[perm] = (M[perm^-1])' resid
        left = np.concatenate([np.concatenate([self.q[r], self.qz[r]], axis=1) for r in rows],
                              axis=1)                          # (n, B (k + m))
        prod = (self.resid_t @ left).reshape(self.resid_t.shape[0], len(perms), k + m)
        q_y = self.q_fit_t[:, None, :] + prod[:, :, :k]       # (V, B, k)
        cross = np.einsum("vm,vbm->vb", self.fitted_t, prod[:, :, k:])
        total = (self.ss_fitted + self.ss_resid)[:, None] + 2 * cross
        rss = np.maximum(total - np.einsum("vbk,vbk->vb", q_y, q_y), 1e-30)
        sigma2 = rss / self.dof
        cb = q_y @ self.c_rinv.T                              # (V, B, rank)
        if not self.contrast.is_f:
            stat = cb[..., 0] / np.sqrt(sigma2 / self.middle[0, 0])
        else:
            stat = np.einsum("vbi,ij,vbj->vb", cb, self.middle, cb) / self.rank / sigma2
        return np.ascontiguousarray(stat.T)


def _permutations(n: int, n_permutations: int, seed: int) -> list[NDArray]:
    """``n_permutations`` random orderings of n rows, or all n! - 1 non-identity orderings when
    there are no more than that (small samples: the exact test)."""
    if math.factorial(n) - 1 <= n_permutations:
        return [np.array(p) for p in itertools.permutations(range(n))][1:]
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(n_permutations)]


def permutation_inference(x: NDArray, y: NDArray, mask: NDArray[np.bool_], contrast: Contrast,
                          nuisance: list[int], n_permutations: int = 1000,
                          cluster_p: float = 0.001, q: float = 0.025,
                          seed: int = 0) -> Inference:
    """Voxel statistics, clusters at the parametric threshold p < ``cluster_p``, and cluster
    p-values from ``n_permutations`` random Freedman-Lane permutations (plus the identity). When
    the n participants have no more than ``n_permutations`` + 1 orderings, every ordering is used
    once instead: the exact permutation test."""
    stat, effect, df1, dof = statistic(x, y, contrast)
    p = p_values(stat, contrast, df1, dof)
    threshold = float(stats.f.isf(cluster_p, df1, dof) if contrast.is_f
                      else stats.t.isf(cluster_p, dof))
    orderings = _permutations(x.shape[0], n_permutations, seed)
    exact = len(orderings) == math.factorial(x.shape[0]) - 1
    fast = _FastGLM(x, y, contrast, nuisance).as_float32()
    batch = 16
    null_stats = (row for i in range(0, len(orderings), batch)
                  for row in fast.batch(orderings[i:i + batch]))
    return _cluster_inference(stat, effect, p, mask, threshold, null_stats, len(orderings),
                              exact, q, (df1, dof))


def _cluster_inference(stat: NDArray, effect: NDArray, p: NDArray, mask: NDArray[np.bool_],
                       threshold: float, null_stats, n_null: int, exact: bool, q: float,
                       df: tuple[int, int]) -> Inference:
    """Clusters of ``stat`` (the mask's voxels) above ``threshold``, and their uncorrected and
    FWE p-values from the clusters of ``n_null`` null statistics (an iterable of arrays like
    ``stat``), Benjamini-Hochberg over the cluster p-values, voxel FWE p from the null maxima
    and voxel-level FDR of the parametric ``p``."""
    labels, n = clusters(mask, stat > threshold)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    # label null clusters inside the mask's bounding box only (same clusters, less work)
    corner = np.argwhere(mask)
    box = tuple(slice(a, b + 1) for a, b in zip(corner.min(axis=0), corner.max(axis=0)))
    mask_box = mask[box]
    null_sizes: list[int] = []
    max_sizes = np.zeros(n_null)
    max_stats = np.zeros(n_null)
    for i, s in enumerate(null_stats):
        max_stats[i] = s.max()
        lab, k = clusters(mask_box, s > threshold)      # the mask's voxels, same order
        if k:
            sz = np.bincount(lab.ravel(), minlength=k + 1)[1:]
            null_sizes.extend(sz.tolist())
            max_sizes[i] = sz.max()
    null = np.sort(np.asarray(null_sizes, dtype=float))
    # uncorrected cluster p: chance that a null cluster is at least this large
    p_unc = np.array([(1 + (null.size - np.searchsorted(null, s, side="left"))) /
                      (1 + null.size) for s in sizes])
    p_fwe = np.array([(1 + np.sum(max_sizes >= s)) / (1 + n_null) for s in sizes])
    significant, q_values = bh_fdr(p_unc, q)
    max_sorted = np.sort(max_stats)
    voxel_fwe = (1 + max_sorted.size - np.searchsorted(max_sorted, stat, side="left")) / (
        1 + n_null)
    voxel_sig, _ = bh_fdr(p, q)
    return Inference(stat, effect, p, z_from_p(p), labels, sizes, p_unc, q_values, p_fwe,
                     significant, voxel_fwe, voxel_sig, threshold, df, n_null, exact)


def _sign_flips(n: int, n_permutations: int, seed: int) -> NDArray:
    """(B, n) sign vectors: ``n_permutations`` random ones, or all 2^n - 1 but the identity
    when there are no more than that (the exact test)."""
    if 2 ** n - 1 <= n_permutations:
        every = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return every[1:]
    return np.random.default_rng(seed).choice((1.0, -1.0), (n_permutations, n))


def sign_flip_inference(d: NDArray, mask: NDArray[np.bool_], n_permutations: int = 1000,
                        cluster_p: float = 0.001, q: float = 0.025, seed: int = 0
                        ) -> Inference:
    """One-sample t test that the mean of ``d`` (n participants, V voxels in ``mask``; e.g.
    paired differences) is above 0, with clusters at the parametric threshold p < ``cluster_p``
    and cluster p-values from ``n_permutations`` random sign flips of the participants (the
    paired permutation test; every flip when there are no more). The sum of squares does not
    change under a flip, so each flip's t needs only its mean: one matrix product per batch."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    dof = n - 1
    ss = np.einsum("nv,nv->v", d, d)

    def t_of(means: NDArray) -> NDArray:
        var = np.maximum(ss - n * means ** 2, 1e-30) / dof
        return means / np.sqrt(var / n)

    mean = d.mean(axis=0)
    stat = t_of(mean)
    p = stats.t.sf(stat, dof)
    threshold = float(stats.t.isf(cluster_p, dof))
    flips = _sign_flips(n, n_permutations, seed)
    null_stats = (row for lo in range(0, len(flips), 16)
                  for row in t_of(flips[lo:lo + 16] @ d / n))
    return _cluster_inference(stat, mean, p, mask, threshold, null_stats, len(flips),
                              len(flips) == 2 ** n - 1, q, (1, dof))


def tfce_inference(x: NDArray, y: NDArray, mask_img, contrast: Contrast, nuisance: list[int],
                   n_permutations: int = 1000, seed: int = 0, n_jobs: int = 1
                   ) -> tuple[NDArray, NDArray]:
    """Threshold-free cluster enhancement of a t contrast on one regressor (Smith & Nichols 2009;
    E 0.5, H 2, 100 steps as fslmaths) and its FWE p-values from the maximum TFCE over
    permutations, by nilearn's ``permuted_ols`` (the nuisance regressors, intercept included,
    are its confounds; one-sided in the contrast's direction). ``y``: (n, V) values in
    ``mask_img``. Returns the TFCE values and FWE p per voxel."""
    from nilearn.maskers import NiftiMasker
    from nilearn.mass_univariate import permuted_ols

    weights = np.asarray(contrast.weights, dtype=float)
    if contrast.is_f or np.count_nonzero(weights) != 1:
        raise ValueError(f"TFCE needs a t contrast on one regressor, not {contrast.name}")
    column = int(np.flatnonzero(weights)[0])
    tested = x[:, [column]] * np.sign(weights[column])
    out = permuted_ols(tested, y, confounding_vars=x[:, nuisance] if nuisance else None,
                       model_intercept=not nuisance, n_perm=n_permutations,
                       two_sided_test=False, random_state=seed, n_jobs=n_jobs,
                       masker=NiftiMasker(mask_img).fit(), tfce=True, output_type="dict")
    return np.asarray(out["tfce"][0]), 10.0 ** -np.asarray(out["logp_max_tfce"][0])
