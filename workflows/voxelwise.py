"""The voxelwise stage: one kinetic model's parametric maps in PET space."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.imaging.voxelwise import settings_record
from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import get_model


def init_voxelwise_wf(*, metadata: dict, model: str, settings: ModelSettings,
                      mem_gb: float = 2.0, name: str = "voxelwise_wf") -> pe.Workflow:
    """Voxelwise fit of ``model`` (:func:`workflows.imaging.voxelwise.fit_maps`).

    Parameters
    ----------
    metadata : the scan's :meth:`~workflows.kinetics.metadata.PETMetadata.as_record`.
    model : a model of :data:`workflows.kinetics.models.MODELS` with a voxelwise fit.
    settings : its settings (theta3 range, number of bases, ...).

    Inputs
    ------
    pet_hmc, reference_mask, brain_mask (PET grid); kinpar (the regional SRTM fits: k2' for
    the models that fix it, unless ``settings`` gives it).

    Outputs
    -------
    maps (the model's ``maps``, PET space, in that order), se_maps (standard errors in percent
    of those the model gives them for, in that order; may be empty), fit_info (JSON).
    """
    kinetic = get_model(model)
    workflow = pe.Workflow(name=name)
    maps = kinetic.maps
    listed = maps[0] if len(maps) == 1 else f"{', '.join(maps[:-1])} and {maps[-1]}"
    workflow.__desc__ = (
        f"{listed} {'was' if len(maps) == 1 else 'were'} estimated voxel by voxel with "
        f"{kinetic.methods(settings)}, weights from counting statistics. ")
    inputnode = pe.Node(niu.IdentityInterface(
        fields=["pet_hmc", "reference_mask", "brain_mask", "kinpar"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["maps", "se_maps", "fit_info"]),
                         name="outputnode")
    node = pe.Node(niu.Function(function=_fit_node,
                                output_names=["maps", "se_maps", "fit_info"]),
                   name=model.replace("-", "_"), mem_gb=mem_gb)
    node.inputs.metadata = metadata
    node.inputs.model = model
    node.inputs.settings = settings_record(settings)
    node.inputs.kinpar = None
    if "k2prime_per_min" in kinetic.needs and settings.k2prime_per_min is None:
        workflow.connect(inputnode, "kinpar", node, "kinpar")
    workflow.connect([
        (inputnode, node, [("pet_hmc", "pet_hmc"), ("reference_mask", "reference_mask"),
                           ("brain_mask", "brain_mask")]),
        (node, outputnode, [("maps", "maps"), ("se_maps", "se_maps"),
                            ("fit_info", "fit_info")]),
    ])
    return workflow


def _fit_node(pet_hmc, metadata, reference_mask, brain_mask, model, settings, kinpar):
    import os
    from workflows.imaging.voxelwise import fit_maps
    return fit_maps(pet_hmc, metadata, reference_mask, brain_mask, model, settings,
                    os.getcwd(), kinpar)
