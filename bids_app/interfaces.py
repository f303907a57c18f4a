"""The app's nodes in the participant graph: the derivative writers and the report, each called
with one scan's record and all its products once they exist.

One interface serves them all: its inputs are ``output_dir``, ``scan`` (the record of
:func:`bids_app.participant.scan_record`) and one field per product, declared when the node is
made, so a scan with more products (models, PVC) needs no new signature.
"""

from __future__ import annotations

import importlib

from nipype.interfaces.base import (DynamicTraitedSpec, SimpleInterface, TraitedSpec, isdefined,
                                    traits)
from nipype.interfaces.io import add_traits

WRITERS = {
    "scan": "bids_app.derivatives:write_scan_derivatives",
    "pvc": "bids_app.derivatives:write_pvc_derivatives",
    "regional": "bids_app.derivatives:write_regional_derivatives",
    "anat": "bids_app.derivatives:write_anat_derivatives",
    "report": "bids_app.reports:scan_report",
    "regional_report": "bids_app.reports:regional_report",
}


class _WriterOutputSpec(TraitedSpec):
    out = traits.Any(desc="what the writer returns (paths written)")


class ScanWriter(SimpleInterface):
    """Calls the writer ``writer`` (a key of :data:`WRITERS`) as
    ``writer(output_dir, scan, products)`` with the products connected to ``fields``."""

    input_spec = DynamicTraitedSpec
    output_spec = _WriterOutputSpec

    def __init__(self, writer: str, fields: list[str], **inputs) -> None:
        if writer not in WRITERS:
            raise ValueError(f"unknown writer {writer!r}")
        super().__init__(**inputs)
        add_traits(self.inputs, ["writer", "output_dir", "scan", *fields])
        self.inputs.writer = writer
        self._fields = list(fields)

    def _run_interface(self, runtime):
        from bids_app.bids_io import writes_confined_to

        module, function = WRITERS[self.inputs.writer].split(":")
        products = {f: getattr(self.inputs, f) for f in self._fields
                    if isdefined(getattr(self.inputs, f))}
        write = getattr(importlib.import_module(module), function)
        with writes_confined_to(self.inputs.output_dir):   # a writer writes the outputs only
            self._results["out"] = write(self.inputs.output_dir, self.inputs.scan, products)
        return runtime
