"""SRTM2 by basis functions (Wu & Carson 2002; the basis-function form of Gunn et al. 1997),
for many voxels at once: SRTM with the reference region's efflux k2' fixed,

    C_T(t) = R1 [C_R(t) + (k2' - k2a) C_R(t) (*) exp(-k2a t)],   BPND = R1 k2' / k2a - 1.

For each of n_bases log-spaced k2a (= theta3) values the model is one basis function d_i times
R1, so the weighted least-squares R1 is (d_i . y) / |d_i|^2 and the weighted residual sum of
squares is |y|^2 - (d_i . y)^2 / |d_i|^2: the best basis of a voxel is the one with the largest
positive projection on the unit basis. One (n_voxels x n_frames) @ (n_frames x n_bases)
product per chunk of voxels. Times in minutes, rate constants in 1/min.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..convolution import convolve_exponentials
from ..fitting import in_chunks
from ..frames import FrameTiming
from ..model import Fit, ModelSettings
from ._k2prime import FixedK2PrimeModel
from .srtm_bfm import BASIS_CHUNK_VOXELS, basis_description, with_edge_warnings

METHOD = "SRTM2-BFM"


def fit_srtm2_bfm(timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                  weights: ArrayLike, k2prime_per_min: float,
                  theta3_range_per_min: tuple[float, float], n_bases: int
                  ) -> dict[str, NDArray]:
    """BPND, R1, k2 and k2a (1/min) of (n, frames) TACs; ``on_bound`` where the best k2a is
    the lowest or highest basis."""
    ref = np.asarray(reference_tac, dtype=np.float64)
    sqrt_w = np.sqrt(np.asarray(weights, dtype=np.float64))
    lo, hi = theta3_range_per_min
    if not (0 < lo < hi):
        raise ValueError(f"theta3 range must satisfy 0 < low < high, got {lo}, {hi}")
    theta = np.geomspace(lo, hi, n_bases)
    basis = ref + (k2prime_per_min - theta)[:, None] * convolve_exponentials(timing, ref,
                                                                              theta)
    norms = np.linalg.norm(basis * sqrt_w, axis=1)
    unit_t = np.ascontiguousarray((basis * sqrt_w / norms[:, None]).T)     # (F, K)
    y_all = np.atleast_2d(np.asarray(tacs))

    def chunk(part: slice) -> dict[str, NDArray]:
        y = y_all[part].astype(np.float64, order="C")
        yw = y * sqrt_w
        best = np.argmax(yw @ unit_t, axis=1)
        r1 = np.einsum("ij,ji->i", yw, unit_t[:, best]) / norms[best]
        resid = (y - r1[:, None] * basis[best]) * sqrt_w
        k2a = theta[best]
        return {"BPND": r1 * k2prime_per_min / k2a - 1.0, "R1": r1, "k2": r1 * k2prime_per_min,
                "k2a": k2a, "wrss": np.einsum("ij,ij->i", resid, resid),
                "n_frames": np.full(len(y), timing.n_frames),
                "on_bound": (best == 0) | (best == n_bases - 1)}

    return in_chunks(len(y_all), chunk, chunk=BASIS_CHUNK_VOXELS)


class SRTM2BasisFunctions(FixedK2PrimeModel):
    """SRTM2 by basis functions: voxelwise, and the same fit on regional TACs."""

    def __init__(self) -> None:
        super().__init__(name="srtm2-bfm", label="SRTM2",
                         title="SRTM2 (k2' fixed) by basis functions",
                         citation="SRTM2 [@srtm2] by basis functions [@bfm]",
                         parameters=("BPND", "R1", "k2", "k2a", "k2prime"), fit_one=None,
                         maps=("BPND", "R1", "k2"))
        self.method, self.voxelwise = METHOD, True
        self.needs = ("k2prime_per_min", "theta3_range_per_min", "n_bases")

    def fit_voxelwise(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                      weights: ArrayLike, settings: ModelSettings) -> Fit:
        if settings.theta3_range_per_min is None:
            raise ValueError("the basis-function method needs a theta3 range")
        k2p = self.k2prime(settings)
        out = fit_srtm2_bfm(timing, reference_tac, tacs, weights, k2p,
                            settings.theta3_range_per_min, settings.n_bases)
        values = {p: out[p] for p in ("BPND", "R1", "k2", "k2a")}
        values["k2prime"] = np.full(out["BPND"].size, k2p)
        return Fit(METHOD, values, {}, out["wrss"], out["n_frames"], out["on_bound"])

    def fit_regional(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                     weights: ArrayLike, settings: ModelSettings) -> Fit:
        return with_edge_warnings(self.fit_voxelwise(timing, reference_tac, tacs, weights,
                                                     settings))

    def describe(self, settings: ModelSettings) -> dict:
        return {**super().describe(settings), **basis_description(settings)}

    def methods(self, settings: ModelSettings) -> str:
        lo, hi = settings.theta3_range_per_min or (float("nan"), float("nan"))
        return (super().methods(settings) + f", with {settings.n_bases} log-spaced bases of "
                f"k2a {lo:.3f}-{hi:.3f} /min")

    def describe_fit(self, fit: Fit) -> dict:
        return {"FractionOfVoxelsOnTheta3Bound": float(fit.on_bound.mean())}


MODEL = SRTM2BasisFunctions()
