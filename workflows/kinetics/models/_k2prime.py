"""What the models with the reference region's efflux k2' fixed share (SRTM2, MRTM2, the Logan
reference plot): the check of k2', the start t* of the fitted frames, their sidecar entries and
methods text, and the regional fit as one TAC after another."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..frames import FrameTiming
from ..model import Fit, ModelSettings


def fit_each(method: str, tacs: ArrayLike, fit_one) -> Fit:
    """A regional fit: ``fit_one(tac) -> row`` (see :meth:`Fit.from_rows`) on every TAC."""
    return Fit.from_rows(method, [fit_one(y) for y in
                                  np.atleast_2d(np.asarray(tacs, dtype=np.float64))])


class FixedK2PrimeModel:
    """A model that takes k2' (1/min) from :class:`ModelSettings`, fitted TAC by TAC with
    ``fit_one(timing, ref, tac, weights, k2prime[, tstar])``; with ``default_tstar_min`` it
    fits the frames after t*. ``citation`` names it in the methods text (with its key);
    ``srtm_curve``: its estimates define an SRTM curve (R1, k2, BPND) for the report. With
    ``fit_many`` (the same arguments, (n, frames) TACs, arrays of :meth:`Fit.from_rows`' keys
    back) it fits voxelwise too and writes ``maps``."""

    def __init__(self, *, name: str, label: str, title: str, citation: str,
                 parameters: tuple[str, ...], fit_one, default_tstar_min: float | None = None,
                 srtm_curve: bool = True, fit_many=None, maps: tuple[str, ...] = (),
                 k2prime_optional: bool = False) -> None:
        self.name, self.label, self.method, self.title = name, label, label, title
        self.citation, self.parameters, self._fit_one = citation, parameters, fit_one
        self.default_tstar_min, self.srtm_curve = default_tstar_min, srtm_curve
        self._fit_many, self.maps, self.voxelwise = fit_many, maps, fit_many is not None
        self.k2prime_optional = k2prime_optional     # k2' = inf ("none") drops its term
        self.needs = ("k2prime_per_min",) + (("tstar_min",) if default_tstar_min is not None
                                             else ())

    def k2prime(self, settings: ModelSettings) -> float:
        k2p = settings.k2prime_per_min
        if k2p == math.inf and self.k2prime_optional:
            return math.inf
        if k2p is None or not (k2p > 0 and math.isfinite(k2p)):
            raise ValueError(f"{self.method} needs a positive k2' (1/min), got {k2p}")
        return float(k2p)

    def tstar(self, settings: ModelSettings) -> float | None:
        return self.default_tstar_min if settings.tstar_min is None else settings.tstar_min

    def fit_regional(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                     weights: ArrayLike | None, settings: ModelSettings) -> Fit:
        extra = () if self.default_tstar_min is None else (self.tstar(settings),)
        k2p = self.k2prime(settings)
        ref = np.asarray(reference_tac, dtype=np.float64)
        return fit_each(self.method, tacs,
                        lambda y: self._fit_one(timing, ref, y, weights, k2p, *extra))

    def fit_voxelwise(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                      weights: ArrayLike | None, settings: ModelSettings) -> Fit:
        if self._fit_many is None:
            raise ValueError(f"{self.method} has no voxelwise fit")
        extra = () if self.default_tstar_min is None else (self.tstar(settings),)
        k2p = self.k2prime(settings)
        y = np.atleast_2d(np.asarray(tacs))
        out = self._fit_many(timing, np.asarray(reference_tac, dtype=np.float64), y, weights,
                             k2p, *extra)
        values = {p: out[p] for p in self.parameters if p in out}
        values["k2prime"] = np.full(len(y), k2p if math.isfinite(k2p) else np.nan)
        return Fit(self.method, values,
                   {p: out[f"{p}_se"] for p in self.parameters if f"{p}_se" in out},
                   out["wrss"], out["n_frames"], np.zeros(len(y), dtype=bool))

    def describe_fit(self, fit: Fit) -> dict:
        return {"FractionOfVoxelsNotFitted": float(np.mean(~np.isfinite(fit["BPND"])))}

    def fitted(self, timing: FrameTiming, reference_tac: ArrayLike,
               values: dict[str, float]) -> NDArray[np.float64] | None:
        if not self.srtm_curve:
            return None                   # a graphical method: no model curve
        from .srtm import srtm_model
        return srtm_model(timing, reference_tac, values["R1"], values["k2"], values["BPND"])

    def describe(self, settings: ModelSettings) -> dict:
        k2p = settings.k2prime_per_min
        out = {"K2Prime": None if k2p == math.inf else k2p}
        if self.default_tstar_min is not None:
            out["TStarMin"] = self.tstar(settings)
        return out

    def methods(self, settings: ModelSettings) -> str:
        k2p = settings.k2prime_per_min
        text = self.citation + (
            ", without the k2' term" if k2p == math.inf else f", with k2' fixed at {k2p:.4g} /min"
            if k2p is not None else
            ", with k2' fixed at the median k2/R1 of the regional SRTM fits [@mrtm2]")
        if self.default_tstar_min is not None:
            text += f" and t* {self.tstar(settings):g} min"
        return text
