"""SRTM by the basis-function method (Gunn et al. 1997), for many voxels at once.

    C_T(t) = R1 C_R(t) + (k2 - R1 k2a) C_R(t) (*) exp(-k2a t),   k2a = k2 / (1 + BPND)

For each of n_bases log-spaced theta3 (= k2a) values the model is linear in
theta1 = R1 and theta2 = k2 - R1 theta3. Weighted least squares for all voxels is done with matrix
products: with the weighted reference column first, Gram-Schmidt gives one unit vector q1 shared by
all bases and one q2_i per basis, and the weighted residual sum of squares of voxel y under basis i
is |y|^2 - (q1.y)^2 - (q2_i.y)^2. The best basis per voxel is therefore argmax_i |q2_i . y|: one
(n_voxels x n_frames) @ (n_frames x n_bases) product per chunk of voxels, chunks in parallel.

Times in minutes, rate constants in 1/min, TACs decay-corrected in any common unit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits
from numpy.typing import ArrayLike, NDArray

from ..convolution import convolve_exponentials
from ..fitting import usable_cpus
from ..frames import FrameTiming
from ..model import Fit, ModelSettings


METHOD = "SRTM-BFM"


@dataclass(frozen=True)
class BasisSet:
    """Precomputed weighted design of the basis-function method."""

    theta3_per_min: NDArray[np.float64]   # (K,)
    reference: NDArray[np.float64]        # (F,) C_R frame means
    basis: NDArray[np.float64]            # (K, F) C_R (*) exp(-theta3 t), frame means
    sqrt_w: NDArray[np.float64]           # (F,)
    q1: NDArray[np.float64]               # (F,) unit weighted reference
    r11: float                            # |sqrt_w C_R|
    q2: NDArray[np.float64]               # (K, F) unit weighted basis, orthogonal to q1
    r12: NDArray[np.float64]              # (K,)
    r22: NDArray[np.float64]              # (K,)


def make_basis_set(timing: FrameTiming, reference_tac: ArrayLike, weights: ArrayLike,
                   theta3_range_per_min: tuple[float, float] = (0.06, 0.6),
                   n_bases: int = 300) -> BasisSet:
    """Basis functions for theta3 log-spaced over ``theta3_range_per_min`` (1/min)."""
    ref = np.asarray(reference_tac, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if ref.shape != (timing.n_frames,) or w.shape != ref.shape:
        raise ValueError(f"reference TAC and weights need {timing.n_frames} frames, got "
                         f"{ref.shape} and {w.shape}")
    if not np.all(np.isfinite(ref)):
        raise ValueError("the reference TAC has NaN or infinite values")
    if not np.any(ref > 0):
        raise ValueError("the reference TAC is zero everywhere: check the reference mask")
    if np.any(w < 0) or not np.any(w > 0):
        raise ValueError("weights must be non-negative and not all zero")
    lo, hi = theta3_range_per_min
    if not (0 < lo < hi):
        raise ValueError(f"theta3 range must satisfy 0 < low < high, got {lo}, {hi}")
    theta = np.geomspace(lo, hi, n_bases)
    basis = convolve_exponentials(timing, ref, theta)
    sqrt_w = np.sqrt(w)
    a1 = sqrt_w * ref
    r11 = float(np.linalg.norm(a1))
    q1 = a1 / r11
    bw = basis * sqrt_w
    r12 = bw @ q1
    u = bw - r12[:, None] * q1
    r22 = np.linalg.norm(u, axis=1)
    if np.any(r22 <= 1e-12 * np.linalg.norm(bw, axis=1)):
        raise ValueError("a basis function is collinear with the reference TAC: "
                         "too few frames for SRTM")
    return BasisSet(theta, ref, basis, sqrt_w, q1, r11, u / r22[:, None], r12, r22)


# voxels per chunk of a basis-function fit: its (voxels x bases) projections, 5 MB at 300
# bases, stay in the CPU's cache for every thread (docs/validation.md: speed)
BASIS_CHUNK_VOXELS = 2048


# bases on either side of the float32 choice that :func:`best_basis` compares in float64
CHECKED_NEIGHBOURS = 2


def best_basis(yw: NDArray[np.float64], q2t32: NDArray[np.float32], q2: NDArray[np.float64]
               ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The basis of least weighted RSS, argmax_i (q2_i . yw)^2, for each row of ``yw``, and
    the projection q2_best . yw (float64): the projections on every basis in float32 (faster
    than float64; docs/validation.md: speed), then the choice and its
    :data:`CHECKED_NEIGHBOURS` neighbours on either side compared in float64, so that the
    rounding of float32 does not decide between bases whose fits differ by less than it
    (docs/validation.md: the same choice as float64)."""
    p2 = yw.astype(np.float32) @ q2t32            # (V, K) projections on each basis
    np.square(p2, out=p2)
    rough = np.argmax(p2, axis=1)
    del p2
    last = q2.shape[0] - 1
    near = np.clip(rough[:, None] + np.arange(-CHECKED_NEIGHBOURS, CHECKED_NEIGHBOURS + 1),
                   0, last)                                      # (V, 2n+1)
    exact = np.einsum("vf,vkf->vk", yw, q2[near])
    pick = np.argmax(exact * exact, axis=1)
    rows = np.arange(len(near))
    return near[rows, pick], exact[rows, pick]


def fit_srtm_bfm(tacs: ArrayLike, basis_set: BasisSet, chunk_voxels: int = BASIS_CHUNK_VOXELS,
                 n_threads: int | None = None) -> Fit:
    """Fit SRTM to ``tacs`` of shape (n_voxels, n_frames) (or (n_frames,): one TAC).

    Returns BPND, R1, k2 and k2a (1/min) per TAC; ``on_bound`` where the best theta3 is the
    lowest or highest basis. Voxels are processed in chunks of ``chunk_voxels`` (about
    n_bases x chunk_voxels x 8 bytes of temporaries each, small enough to stay in cache) on
    ``n_threads`` threads (default: the usable CPUs), each with single-threaded BLAS. Float32
    input is converted to float64 chunk by chunk; all arithmetic is float64.
    """
    y_all = np.asarray(tacs)
    if not np.issubdtype(y_all.dtype, np.floating):
        y_all = y_all.astype(np.float64)
    y_all = np.atleast_2d(y_all)
    n_vox, n_frames = y_all.shape
    if n_frames != basis_set.reference.size:
        raise ValueError(f"TACs have {n_frames} frames, the basis set has "
                         f"{basis_set.reference.size}")
    out = {k: np.empty(n_vox) for k in ("bpnd", "r1", "k2", "k2a", "wrss")}
    on_bound = np.empty(n_vox, dtype=bool)
    q2t32 = np.ascontiguousarray(basis_set.q2.T, dtype=np.float32)     # (F, K)
    theta = basis_set.theta3_per_min
    last = theta.size - 1

    def fit_chunk(lo: int) -> None:
        hi = min(lo + chunk_voxels, n_vox)
        y = y_all[lo:hi].astype(np.float64, order="C")        # (V, F)
        yw = y * basis_set.sqrt_w
        best, p2_best = best_basis(yw, q2t32, basis_set.q2)
        p1 = yw @ basis_set.q1
        theta2 = p2_best / basis_set.r22[best]
        theta1 = (p1 - basis_set.r12[best] * theta2) / basis_set.r11
        theta3 = theta[best]
        k2 = theta2 + theta1 * theta3
        out["r1"][lo:hi] = theta1
        out["k2"][lo:hi] = k2
        out["k2a"][lo:hi] = theta3
        out["bpnd"][lo:hi] = k2 / theta3 - 1.0
        # the residual is what the two orthonormal directions leave of yw (module docstring)
        rss = np.einsum("ij,ij->i", yw, yw) - p1 * p1 - p2_best * p2_best
        out["wrss"][lo:hi] = np.maximum(rss, 0.0)
        on_bound[lo:hi] = (best == 0) | (best == last)

    starts = range(0, n_vox, chunk_voxels)
    workers = min(n_threads or usable_cpus(), len(starts))
    with threadpool_limits(1):
        if workers <= 1:
            for lo in starts:
                fit_chunk(lo)
        else:
            with ThreadPoolExecutor(workers) as pool:
                for _ in pool.map(fit_chunk, starts):
                    pass
    n = np.full(n_vox, n_frames, dtype=np.int64)
    return Fit(METHOD, {"BPND": out["bpnd"], "R1": out["r1"], "k2": out["k2"],
                        "k2a": out["k2a"]}, {}, out["wrss"], n, on_bound)


def with_edge_warnings(fit: Fit) -> Fit:
    """A basis-function fit of regions, with a warning where the best basis is an edge one."""
    fit.warnings = [["best theta3 on the edge of the range"] if b else [] for b in fit.on_bound]
    return fit


def basis_description(settings: ModelSettings) -> dict:
    """Sidecar entries of a basis-function method's settings."""
    return {"Theta3RangePerMin": list(settings.theta3_range_per_min or ()),
            "NumberOfBases": settings.n_bases, "Theta3Spacing": "log"}


class SRTMBasisFunctions:
    """SRTM by basis functions: regional and voxelwise, one matrix product per chunk."""

    name = "srtm-bfm"
    label = "SRTM"
    method = METHOD
    title = ("basis functions (Gunn et al. 1997), exact frame-integrated convolution, weighted "
             "least squares")
    parameters = ("BPND", "R1", "k2", "k2a")
    maps = ("BPND", "R1", "k2")
    needs = ("theta3_range_per_min", "n_bases")
    voxelwise = True

    def fit_voxelwise(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                      weights: ArrayLike, settings: ModelSettings) -> Fit:
        if settings.theta3_range_per_min is None:
            raise ValueError("the basis-function method needs a theta3 range")
        return fit_srtm_bfm(tacs, make_basis_set(timing, reference_tac, weights,
                                                 settings.theta3_range_per_min,
                                                 settings.n_bases))

    def fit_regional(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                     weights: ArrayLike, settings: ModelSettings) -> Fit:
        return with_edge_warnings(self.fit_voxelwise(timing, reference_tac, tacs, weights,
                                                     settings))

    def fitted(self, timing: FrameTiming, reference_tac: ArrayLike,
               values: dict[str, float]) -> NDArray[np.float64]:
        from .srtm import srtm_model
        return srtm_model(timing, reference_tac, values["R1"], values["k2"], values["BPND"])

    def describe(self, settings: ModelSettings) -> dict:
        return basis_description(settings)

    def methods(self, settings: ModelSettings) -> str:
        lo, hi = settings.theta3_range_per_min or (float("nan"), float("nan"))
        return (f"the basis-function method of SRTM [@srtm; @bfm], with {settings.n_bases} "
                f"log-spaced bases of theta3 {lo:.3f}-{hi:.3f} /min on decay-corrected data "
                "and exact frame-integrated convolution")

    def describe_fit(self, fit: Fit) -> dict:
        return {"FractionOfVoxelsOnTheta3Bound": float(fit.on_bound.mean())}


MODEL = SRTMBasisFunctions()
