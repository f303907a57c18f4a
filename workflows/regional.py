"""The regional stage of TACs made elsewhere (PETPrep's): the table in petbind's layout, then
every model of the family fitted region by region."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from workflows.kinetics.model import ModelSettings
from workflows.kinetics.models import MODELS, get_model


def regional_models() -> list[str]:
    """One model per label of the family (SRTM, SRTM2, MRTM2, LoganRef...): where two share a
    label, the one fitted region by region (nonlinear) rather than its basis-function form.
    SRTM first: the others take k2' from it."""
    chosen: dict[str, str] = {}
    for name, model in MODELS.items():
        if model.label not in chosen or not model.voxelwise:
            chosen[model.label] = name
    return sorted(chosen.values(), key=lambda m: (m != "srtm", m))


def node_key(model: str) -> str:
    """A model's name as a node and field name (``logan-ref`` -> ``logan_ref``)."""
    return model.replace("-", "_")


def init_regional_wf(*, table: dict, reference: dict, theta3_range_per_min: list[float],
                     name: str = "regional_wf") -> pe.Workflow:
    """Regional fits of a TAC table checked by the app (:mod:`bids_app.petprep`).

    Parameters
    ----------
    table : the table's record: path, time columns, regions kept, metadata (times from
        injection).
    reference : the reference region's name, labels and their weights.
    theta3_range_per_min : the tracer's theta3 range for the basis-function models.

    Outputs
    -------
    tacs (TSV in petbind's layout), and ``<model>_kinpar`` for each of
    :func:`regional_models` (TSV, with a JSON of its settings beside it).
    """
    models = regional_models()
    workflow = pe.Workflow(name=name)
    workflow.__desc__ = (
        "Regional time-activity curves preprocessed elsewhere were taken as they were, their "
        "times counted from injection and decay-corrected to it; the reference region's curve "
        "was the volume-weighted mean of its labels. Each region was fitted with "
        + "; with ".join(get_model(m).methods(ModelSettings()) for m in models[:1])
        + f", and with {', '.join(get_model(m).label for m in models[1:])} with k2' the median "
        "k2/R1 of the SRTM fits off their bounds; weights from counting statistics. ")
    outputnode = pe.Node(niu.IdentityInterface(
        fields=["tacs", *[f"{node_key(m)}_kinpar" for m in models]]), name="outputnode")
    prepare = pe.Node(niu.Function(function=_prepare_node, output_names=["tacs"]),
                      name="prepare")
    prepare.inputs.table = table
    prepare.inputs.reference = reference
    workflow.connect(prepare, "tacs", outputnode, "tacs")
    fits = {}
    for model in models:
        fit = pe.Node(niu.Function(function=_fit_node, output_names=["kinpar"]),
                      name=f"fit_{node_key(model)}")
        fit.inputs.metadata = table["metadata"]
        fit.inputs.reference_name = reference["name"]
        fit.inputs.regions = table["regions"]
        fit.inputs.model = model
        fit.inputs.theta3_range_per_min = list(theta3_range_per_min)
        workflow.connect([(prepare, fit, [("tacs", "tacs_tsv")]),
                          (fit, outputnode, [("kinpar", f"{node_key(model)}_kinpar")])])
        if model != "srtm":
            workflow.connect(fits["srtm"], "kinpar", fit, "srtm_kinpar")
        fits[model] = fit
    return workflow


def _prepare_node(table, reference):
    import os
    from workflows.imaging.tacs import prepare_regional_tacs
    return prepare_regional_tacs(table, reference, os.getcwd())


def _fit_node(tacs_tsv, metadata, reference_name, regions, model, theta3_range_per_min,
              srtm_kinpar=None):
    import os
    from workflows.imaging.tacs import fit_regions
    return fit_regions(tacs_tsv, metadata, reference_name, os.getcwd(), model, regions,
                       theta3_range_per_min, srtm_kinpar)
