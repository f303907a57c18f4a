"""The regional stage: TACs of the reference and of every atlas region, and regional SRTM."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import get_model

REGIONAL_MODEL = "srtm"     # the model of the participant level's _kinpar.tsv


def init_tacs_wf(*, metadata: dict, reference_region: str, name: str = "tacs_wf"
                 ) -> pe.Workflow:
    """Regional TACs and regional SRTM (:mod:`workflows.imaging.tacs`).

    Parameters
    ----------
    metadata : the scan's :meth:`~workflows.kinetics.metadata.PETMetadata.as_record`.
    reference_region : the column of the reference TAC.

    Inputs
    ------
    pet_hmc, atlas_pet, reference_mask.

    Outputs
    -------
    tacs (TSV), kinpar (TSV).
    """
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "Regional time-activity curves were extracted for the reference region and every "
        "Neuromorphometrics region [@neuromorphometrics], and fitted with "
        f"{get_model(REGIONAL_MODEL).methods(ModelSettings())}, weights from counting "
        "statistics. ")
    inputnode = pe.Node(niu.IdentityInterface(
        fields=["pet_hmc", "atlas_pet", "reference_mask"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["tacs", "kinpar"]), name="outputnode")
    extract = pe.Node(niu.Function(function=_extract_node, output_names=["tacs"]),
                      name="extract", mem_gb=1)
    extract.inputs.metadata = metadata
    extract.inputs.reference_name = reference_region
    fit = init_fit_node(metadata=metadata, reference_region=reference_region, name="fit")
    workflow.connect([
        (inputnode, extract, [("pet_hmc", "pet_hmc"), ("atlas_pet", "atlas_pet"),
                              ("reference_mask", "reference_mask")]),
        (extract, fit, [("tacs", "tacs_tsv")]),
        (extract, outputnode, [("tacs", "tacs")]),
        (fit, outputnode, [("kinpar", "kinpar")]),
    ])
    return workflow


def init_fit_node(*, metadata: dict, reference_region: str, name: str) -> pe.Node:
    """A node fitting the regional model to a TAC table (input ``tacs_tsv``, output
    ``kinpar``); the PVC stage fits its corrected TACs with it too."""
    fit = pe.Node(niu.Function(function=_fit_node, output_names=["kinpar"]), name=name)
    fit.inputs.metadata = metadata
    fit.inputs.reference_name = reference_region
    return fit


def _extract_node(pet_hmc, metadata, atlas_pet, reference_mask, reference_name):
    import os
    from workflows.imaging.tacs import extract_tacs
    return extract_tacs(pet_hmc, metadata, atlas_pet, reference_mask, reference_name,
                        os.getcwd())


def _fit_node(tacs_tsv, metadata, reference_name):
    import os
    from workflows.imaging.tacs import fit_regions
    return fit_regions(tacs_tsv, metadata, reference_name, os.getcwd())
