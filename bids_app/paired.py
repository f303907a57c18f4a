"""What the group level's analyses across two sessions share (occupancy, test-retest): the two
sessions checked against the maps, each participant's maps of both, and regional BPND of both
from the regional fits or the MNI maps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bids_app import names
from bids_app.errors import EX_USAGE, PetbindError
from workflows.group.roi import roi_means
from workflows.imaging.atlas import REGION_GROUPS, Grid, region_labels


@dataclass(frozen=True)
class SessionPair:
    """Two sessions by role, e.g. baseline and blocked, with the options that name them."""

    roles: tuple[str, str]             # e.g. ("baseline", "blocked")
    labels: tuple[str, str]            # their ses- labels
    options: tuple[str, str]           # e.g. ("--baseline-session", "--blocked-session")

    def items(self):
        return zip(self.roles, self.labels)


def session_pair(config) -> SessionPair:
    """The two sessions of the run's analysis (``config.group.analysis``: occupancy, retest)."""
    from bids_app.config import SESSION_ROLES

    roles = SESSION_ROLES[config.group.analysis]
    return SessionPair(roles, tuple(getattr(config.group, f"{r}_session") for r in roles),
                       tuple(f"--{r}-session" for r in roles))


def regional_fit_files(out_dir: Path, model_label: str, tracer: str = "*",
                       pvc: str | None = None) -> list[Path]:
    """The participant level's regional fits (``_kinpar.tsv``): not partial-volume corrected,
    or with ``pvc`` those of that pvc- label."""
    return names.find(out_dir, "kinpar", ".tsv", trc=tracer, model=model_label, pvc=pvc)


def sessions_with_results(out_dir: Path, model_label: str, tracer: str) -> set[str | None]:
    """The sessions of a tracer with BPND maps or regional fits."""
    from bids_app.group import session_of, unsmoothed_maps

    return {session_of(p) for p in [*unsmoothed_maps(out_dir, model_label, tracer),
                                     *regional_fit_files(out_dir, model_label, tracer)]}


def regional_only(out_dir: Path, model_label: str, tracers: list[str]) -> bool:
    """True when none of the tracers has BPND maps: the analyses use regional fits alone."""
    from bids_app.group import unsmoothed_maps

    return not any(unsmoothed_maps(out_dir, model_label, t) for t in tracers)


def check_sessions(out_dir: Path, model_label: str, tracers: list[str], pair: SessionPair
                   ) -> None:
    """Every tracer has maps or regional fits of both sessions, else a usage error listing the
    sessions it has."""
    for tracer in tracers:
        have = sessions_with_results(out_dir, model_label, tracer)
        for option, ses in zip(pair.options, pair.labels):
            if ses not in have:
                shown = ", ".join(sorted(s or "(none)" for s in have))
                raise PetbindError(f"{option} {ses}: trc-{tracer} has no {model_label} BPND "
                                   f"maps or regional fits of ses-{ses} in {out_dir}; "
                                   f"sessions: {shown}", EX_USAGE)


def paired_maps(out_dir: Path, tracer: str, model_label: str, descs: tuple[str | None, ...],
                pair: SessionPair, grid: Grid
                ) -> tuple[dict[str, dict], list[dict]]:
    """Each participant's maps of both sessions, keyed (role, desc), and those left out with
    the reason (a session missing, or a map that cannot be used)."""
    from bids_app.group import find_maps, load_map

    found = {(role, desc): find_maps(out_dir, tracer, model_label, desc, ses)
             for role, ses in pair.items() for desc in descs}
    maps, left = {}, []
    for sub in sorted(set().union(*found.values())):
        missing = [f"ses-{ses}" for role, ses in pair.items() for desc in descs
                   if sub not in found[role, desc]]
        if missing:
            left.append({"participant_id": sub, "reason": f"no {model_label} BPND map of "
                         f"{missing[0]}: one session only"})
            continue
        try:
            maps[sub] = {key: load_map(found[key][sub], grid) for key in found}
        except ValueError as err:
            left.append({"participant_id": sub, "reason": str(err)})
    return maps, left


def regional_fits(out_dir: Path, sub: str, tracer: str, model_label: str, pair: SessionPair
                  ) -> pd.DataFrame | None:
    """BPND per region in both sessions with standard errors (BPND units) from the participant
    level's regional fits (``_kinpar.tsv``): index region, a column per role and
    ``<role>_se``; None unless both sessions have readable fits."""
    columns = {}
    for role, ses in pair.items():
        scan = names.ScanEntities(sub.removeprefix("sub-"), ses, tracer)
        path = names.scan_file(out_dir, scan, "kinpar", ".tsv", model=model_label)
        if not path.is_file():
            return None
        try:
            table = pd.read_csv(path, sep="\t").set_index("region")
            bpnd = table["BPND"].astype(float)
            columns[role], columns[f"{role}_se"] = (bpnd, bpnd.abs() * table["BPND-se"]
                                                    .astype(float) / 100)
        except (KeyError, ValueError, pd.errors.ParserError):
            return None                     # unreadable regional fits
    return pd.DataFrame(columns).dropna(subset=list(pair.roles))


def regional_values(out_dir: Path, sub: str, tracer: str, model_label: str,
                    pair: SessionPair, maps: dict, labels: np.ndarray
                    ) -> tuple[pd.DataFrame, str]:
    """BPND per named region in both sessions with standard errors (BPND units): the
    participant level's regional fits (:func:`regional_fits`) where both sessions have them,
    else the ROI means of the unsmoothed MNI maps (``maps[role, None]``; no standard errors).
    Returns the table (index region; a column per role and ``<role>_se``) and its source."""
    fits = regional_fits(out_dir, sub, tracer, model_label, pair)
    if fits is not None:
        return fits, "regional fits"
    regions = {r: region_labels(r) for r in REGION_GROUPS}
    means = roi_means(np.stack([maps[role, None] for role in pair.roles]), labels, regions)
    columns = {}
    for role, values in zip(pair.roles, means):
        columns[role], columns[f"{role}_se"] = values, np.nan
    return pd.DataFrame(columns, index=pd.Index(list(regions), name="region")), "MNI maps"


def paired_regional(out_dir: Path, tracer: str, model_label: str, pair: SessionPair
                    ) -> tuple[dict[str, pd.DataFrame], list[dict]]:
    """Where there are no maps: each participant's regional BPND of both sessions from the
    regional fits alone (:func:`regional_fits`), and those left out with the reason."""
    from bids_app.group import session_of

    files = regional_fit_files(out_dir, model_label, tracer)
    found = {ses: {p.name.split("_")[0] for p in files if session_of(p) == ses}
             for ses in pair.labels}
    values, left = {}, []
    for sub in sorted(set().union(*found.values())):
        missing = [ses for ses in pair.labels if sub not in found[ses]]
        fits = None if missing else regional_fits(out_dir, sub, tracer, model_label, pair)
        if fits is None:
            why = (f"no {model_label} regional fits of ses-{missing[0]}: one session only"
                   if missing else f"unreadable {model_label} regional fits")
            left.append({"participant_id": sub, "reason": why})
        else:
            values[sub] = fits
    return values, left


def describe_columns(path: Path, frame: pd.DataFrame, columns: dict[str, str]) -> None:
    """``frame`` as a TSV with a JSON sidecar describing each of its columns."""
    from bids_app.bids_io import write_json, write_tsv

    write_tsv(path, frame)
    write_json(names.sidecar(path), {c: {"Description": d} for c, d in columns.items()
                                     if c in frame.columns})
