"""Design matrices and contrasts of the group comparison: the reference group against all others
pooled (both directions) and the F test over all levels, each without and with covariates.

Design matrices are built column by column from the data's values: names from participants.tsv
are never turned into formulas (code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .glm import Contrast


@dataclass
class Analysis:
    """One voxelwise test: its contrast, design matrix, the nuisance columns (intercept and
    covariates) whose residuals Freedman-Lane permutes, and the columns' names."""

    contrast: Contrast
    x: NDArray[np.float64]
    nuisance: list[int]
    names: list[str]

    @property
    def residual_dof(self) -> int:
        return int(self.x.shape[0] - np.linalg.matrix_rank(self.x))


def design_matrix(frame: pd.DataFrame, group: str, levels: list[str], reference: str,
                  covariates: list[str], three_class: bool) -> tuple[NDArray, list[str]]:
    """Intercept, group indicators (the reference level against the others, or every level but
    the first), and covariates: numeric ones centred, categorical ones as indicators of every
    level but the first (sorted)."""
    cols = [np.ones(len(frame))]
    names = ["intercept"]
    if three_class:
        for level in levels[1:]:
            cols.append((frame[group] == level).to_numpy(float))
            names.append(f"group[{level}]")
    else:
        cols.append((frame[group] == reference).to_numpy(float))
        names.append(f"group[{reference}]")
    for c in covariates:
        if frame[c].dtype.kind in "fi":
            v = frame[c].to_numpy(float)
            cols.append(v - v.mean())
            names.append(c)
        else:
            for level in sorted(frame[c].unique())[1:]:
                cols.append((frame[c] == level).to_numpy(float))
                names.append(f"{c}[{level}]")
    return np.column_stack(cols), names


def group_analyses(frame: pd.DataFrame, group: str, levels: list[str], reference: str,
                   covariates: list[str], reference_label: str | None = None
                   ) -> list[Analysis]:
    """``<reference>GtOthers``, ``<reference>LtOthers`` and (three or more levels) ``groupF``,
    then the same with the covariates (suffix ``Adj``) when there are any. The contrasts are
    named with ``reference_label`` (default: the level itself), a label safe in file names."""
    name = reference if reference_label is None else reference_label
    out = []
    for cov_label, cov in (("", []), ("Adj", covariates)) if covariates else (("", []),):
        x2, names2 = design_matrix(frame, group, levels, reference, cov, three_class=False)
        nuisance2 = [i for i, n in enumerate(names2) if not n.startswith("group[")]
        c = np.zeros(x2.shape[1])
        c[names2.index(f"group[{reference}]")] = 1
        out.append(Analysis(Contrast(f"{name}GtOthers{cov_label}", c), x2, nuisance2, names2))
        out.append(Analysis(Contrast(f"{name}LtOthers{cov_label}", -c), x2, nuisance2, names2))
        if len(levels) >= 3:
            x3, names3 = design_matrix(frame, group, levels, reference, cov, three_class=True)
            idx = [i for i, n in enumerate(names3) if n.startswith("group[")]
            f = np.zeros((len(idx), x3.shape[1]))
            for r, i in enumerate(idx):
                f[r, i] = 1
            nuisance3 = [i for i in range(x3.shape[1]) if i not in idx]
            out.append(Analysis(Contrast(f"groupF{cov_label}", f), x3, nuisance3, names3))
    return out
