"""The group level (issue: voxelwise GLM, cluster-level FDR and ROI tables)."""

from __future__ import annotations

from bids_app.errors import EX_FAILURE, PetbindError


def run_group(settings, args) -> int:
    raise PetbindError("the group level is not available in this version; run the "
                       "participant level", EX_FAILURE)
