"""Voxelwise GLM with nonparametric (permutation) inference, cluster-level FDR as SPM's
topological FDR, voxel-level FDR, and cluster FWE.

Maps are (n_subjects, n_voxels) arrays inside a mask. Permutations follow Freedman & Lane (1983):
the data are residualised on the nuisance part of the design (intercept and covariates), the
residuals permuted and added back, and the full model refitted, which keeps the covariates'
effect out of the null distribution.
"""

from __future__ import annotations

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


class _FastGLM:
    """The GLM statistic for many permutations of Freedman-Lane residuals without copying the
    data: with X = Q R and the nuisance fit Z g, every quantity needed is a small matrix (rows
    permuted) times the residuals."""

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
            qz, _ = np.linalg.qr(z)
            self.fitted_coef = qz.T @ y                       # (m, V)
            self.qz = qz
            self.resid = y - qz @ self.fitted_coef
        else:
            self.fitted_coef = np.zeros((0, y.shape[1]))
            self.qz = np.zeros((x.shape[0], 0))
            self.resid = y
        self.ss_fitted = np.einsum("iv,iv->v", self.fitted_coef, self.fitted_coef)
        self.ss_resid = np.einsum("iv,iv->v", self.resid, self.resid)
        self.q_fit = self.q.T @ (self.qz @ self.fitted_coef)  # Q' (fitted part), (k, V)

    def as_float32(self) -> "_FastGLM":
        """Single precision for the permutation loop (null distributions only): halves the
        memory traffic; statistics agree to about 1e-6 relative."""
        for name in ("q", "qz", "resid", "fitted_coef", "q_fit", "ss_fitted", "ss_resid"):
            setattr(self, name, getattr(self, name).astype(np.float32))
        return self

    def __call__(self, perm: NDArray | None) -> NDArray:
        rows = slice(None) if perm is None else np.argsort(perm)
        # y_perm = fitted + resid[perm]; M' resid[perm] = (M[perm^-1])' resid
        q_y = self.q_fit + self.q[rows].T @ self.resid
        cross = np.einsum("mv,mv->v", self.fitted_coef, self.qz[rows].T @ self.resid)
        total = self.ss_fitted + self.ss_resid + 2 * cross
        rss = np.maximum(total - np.einsum("kv,kv->v", q_y, q_y), 1e-30)
        sigma2 = rss / self.dof
        cb = self.c_rinv @ q_y                                # (m, V)
        if not self.contrast.is_f:
            return cb[0] / np.sqrt(self.middle[0, 0] ** -1 * sigma2)
        return np.einsum("iv,ij,jv->v", cb, self.middle, cb) / self.rank / sigma2


def permutation_inference(x: NDArray, y: NDArray, mask: NDArray[np.bool_], contrast: Contrast,
                          nuisance: list[int], n_permutations: int = 1000,
                          cluster_p: float = 0.001, q: float = 0.025,
                          seed: int = 0) -> Inference:
    """Voxel statistics, clusters at the parametric threshold p < ``cluster_p``, and cluster
    p-values from ``n_permutations`` Freedman-Lane permutations (plus the identity)."""
    stat, effect, df1, dof = statistic(x, y, contrast)
    p = p_values(stat, contrast, df1, dof)
    threshold = float(stats.f.isf(cluster_p, df1, dof) if contrast.is_f
                      else stats.t.isf(cluster_p, dof))
    labels, n = clusters(mask, stat > threshold)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]

    rng = np.random.default_rng(seed)
    fast = _FastGLM(x, y, contrast, nuisance).as_float32()
    # label null clusters inside the mask's bounding box only (same clusters, less work)
    corner = np.argwhere(mask)
    box = tuple(slice(a, b + 1) for a, b in zip(corner.min(axis=0), corner.max(axis=0)))
    mask_box = mask[box]
    null_sizes: list[int] = []
    max_sizes = np.zeros(n_permutations)
    max_stats = np.zeros(n_permutations)
    for i in range(n_permutations):
        s = fast(rng.permutation(x.shape[0]))
        max_stats[i] = s.max()
        lab, k = clusters(mask_box, s > threshold)
        if k:
            sz = np.bincount(lab.ravel(), minlength=k + 1)[1:]
            null_sizes.extend(sz.tolist())
            max_sizes[i] = sz.max()
    null = np.sort(np.asarray(null_sizes, dtype=float))
    # uncorrected cluster p: chance that a null cluster is at least this large
    p_unc = np.array([(1 + (null.size - np.searchsorted(null, s, side="left"))) /
                      (1 + null.size) for s in sizes])
    p_fwe = np.array([(1 + np.sum(max_sizes >= s)) / (1 + n_permutations) for s in sizes])
    significant, q_values = bh_fdr(p_unc, q)
    max_sorted = np.sort(max_stats)
    voxel_fwe = (1 + max_sorted.size - np.searchsorted(max_sorted, stat, side="left")) / (
        1 + n_permutations)
    voxel_sig, _ = bh_fdr(p, q)
    return Inference(stat, effect, p, z_from_p(p), labels, sizes, p_unc, q_values, p_fwe,
                     significant, voxel_fwe, voxel_sig, threshold, (df1, dof))
