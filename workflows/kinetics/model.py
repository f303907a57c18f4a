"""What every kinetic model is: the protocol the CLIs, the participant graph, the derivative
writers and the group level read, and the one result type of regional and voxelwise fits.

A model is one module of :mod:`workflows.kinetics.models` that defines ``MODEL``, an object with
the attributes and methods of :class:`KineticModel`; the registry finds it there. Times are in
minutes inside the models, frame timing comes as :class:`~workflows.kinetics.frames.FrameTiming`,
rate constants are in 1/min and TACs are decay-corrected frame means in any common unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .frames import FrameTiming

if TYPE_CHECKING:
    import pandas as pd

# Every parameter a model of the family may estimate, with its units and meaning; a model
# estimates a subset and the others are NaN in its tables.
PARAMETERS: dict[str, tuple[str, str]] = {
    "BPND": ("unitless", "non-displaceable binding potential"),
    "R1": ("unitless", "relative delivery K1/K1'"),
    "k2": ("1/min", "efflux rate constant of the target region"),
    "k2a": ("1/min", "apparent efflux rate constant k2 / (1 + BPND)"),
    "k2prime": ("1/min", "efflux rate constant of the reference region"),
}

SE_SUFFIX = "-se"      # BEP023: a parameter's standard error column, e.g. BPND-se (percent)


def se_columns(columns: Sequence[str]) -> dict[str, dict]:
    """Sidecar entries of the standard-error columns among a table's ``columns``."""
    return {c: {"Units": "%", "Description": f"standard error of {c.removesuffix(SE_SUFFIX)} "
                "in percent of its estimate (asymptotic, from the fit's covariance)"}
            for c in columns if c.endswith(SE_SUFFIX)}


@dataclass(frozen=True)
class ModelSettings:
    """What a model may need beside the TACs and weights.

    ``theta3_range_per_min``: the range of theta3 (= k2a, 1/min) searched by basis-function
    methods, for decay-corrected data. ``k2prime_per_min``: the reference region's efflux
    rate for models that fix it. ``tstar_min``: start of the linear part of graphical methods
    (None: the model's default)."""

    theta3_range_per_min: tuple[float, float] | None = None
    n_bases: int = 300
    k2prime_per_min: float | None = None
    tstar_min: float | None = None


@dataclass
class Fit:
    """One model's estimates for n TACs (regions or voxels): parameter -> (n,) arrays, NaN
    where a value is not defined; standard errors where the model gives them."""

    model: str                                  # the model's method label (KineticModel.method)
    values: dict[str, NDArray[np.float64]]
    standard_errors: dict[str, NDArray[np.float64]]
    wrss: NDArray[np.float64]
    n_frames_fitted: NDArray[np.int64]
    on_bound: NDArray[np.bool_]
    warnings: list[list[str]] | None = None     # per TAC; None: none recorded (voxelwise)

    def __getitem__(self, name: str) -> NDArray[np.float64]:
        return self.values[name]

    @property
    def n(self) -> int:
        return int(self.wrss.size)

    @classmethod
    def from_rows(cls, model: str, rows: Sequence[dict]) -> "Fit":
        """Stack per-TAC results: dicts with parameter values, ``<name>_se``, ``wrss``,
        ``n_frames``, ``on_bound`` and ``warnings``."""
        def column(key: str) -> NDArray[np.float64]:
            return np.array([row.get(key, np.nan) for row in rows], dtype=np.float64)

        names = [p for p in PARAMETERS if any(p in row for row in rows)]
        ses = [p for p in PARAMETERS if any(f"{p}_se" in row for row in rows)]
        return cls(model, {p: column(p) for p in names}, {p: column(f"{p}_se") for p in ses},
                   column("wrss"), np.array([row["n_frames"] for row in rows], dtype=np.int64),
                   np.array([bool(row.get("on_bound", False)) for row in rows]),
                   [list(row.get("warnings", [])) for row in rows])

    def column(self, name: str) -> NDArray[np.float64]:
        """A table column: a parameter, ``<parameter>-se`` (its standard error in percent of
        the estimate, as the BEP023 draft names it), ``wRSS``, ``n_frames``, ``on_bound`` or
        ``warnings``; NaN for what this model does not estimate."""
        if name in self.values:
            return self.values[name]
        if name.endswith(SE_SUFFIX) and name.removesuffix(SE_SUFFIX) in PARAMETERS:
            return self.percent_standard_error(name.removesuffix(SE_SUFFIX))
        special = {"wRSS": self.wrss, "n_frames": self.n_frames_fitted,
                   "on_bound": self.on_bound,
                   "warnings": np.array(["; ".join(w) for w in self.warnings or
                                         [[]] * self.n], dtype=object)}
        if name in special:
            return special[name]
        if name in PARAMETERS:
            return np.full(self.n, np.nan)
        raise KeyError(f"no table column {name!r}")

    def percent_standard_error(self, parameter: str) -> NDArray[np.float64]:
        """100 x standard error / |estimate|; NaN where the model gives no standard error or
        the estimate is 0."""
        se = self.standard_errors.get(parameter)
        if se is None or parameter not in self.values:
            return np.full(self.n, np.nan)
        size = np.abs(self.values[parameter])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(size > 0, 100.0 * se / size, np.nan)

    def table(self, regions: Sequence[str], columns: Sequence[str]) -> "pd.DataFrame":
        """A ``_kinpar.tsv`` table: ``region``, then ``columns`` (see :meth:`column`)."""
        import pandas as pd

        return pd.DataFrame({"region": list(regions),
                             **{name: self.column(name) for name in columns}})


class KineticModel(Protocol):
    """The protocol of a model of the family.

    ``name`` is the command-line key (``srtm-bfm``), ``label`` the model label in derivative
    file names (BEP023 ``model-<label>``), ``method`` the label recorded in sidecars and tables,
    ``parameters`` what it estimates (keys of :data:`PARAMETERS`), ``maps`` the parameters its
    voxelwise fit writes as images, ``needs`` the :class:`ModelSettings` fields it reads."""

    name: str
    label: str
    method: str
    title: str
    parameters: tuple[str, ...]
    maps: tuple[str, ...]
    needs: tuple[str, ...]
    voxelwise: bool

    def fit_regional(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                     weights: ArrayLike, settings: ModelSettings) -> Fit:
        """Fit (n_regions, n_frames) TACs one by one."""

    def fit_voxelwise(self, timing: FrameTiming, reference_tac: ArrayLike, tacs: ArrayLike,
                      weights: ArrayLike, settings: ModelSettings) -> Fit:
        """Fit (n_voxels, n_frames) TACs at once (models with ``voxelwise`` only)."""

    def fitted(self, timing: FrameTiming, reference_tac: ArrayLike,
               values: dict[str, float]) -> NDArray[np.float64] | None:
        """The model's TAC for one set of estimates (None where the model has no curve)."""

    def describe(self, settings: ModelSettings) -> dict:
        """Sidecar entries of the settings this model used."""

    def methods(self, settings: ModelSettings) -> str:
        """The model and its settings for a methods section, with citation keys (``[@key]``,
        :mod:`bids_app.boilerplate`)."""

    def describe_fit(self, fit: Fit) -> dict:
        """Sidecar entries of a voxelwise fit's quality (voxelwise models only)."""
