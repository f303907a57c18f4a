"""The registry of kinetic models: every module here that defines ``MODEL`` (an object of the
:class:`~workflows.kinetics.model.KineticModel` protocol) is a model, found by its file. Adding a
model is adding its file (and its tests); the command lines, the participant graph, the
derivative writers and the group level read their choices from :data:`MODELS`."""

from __future__ import annotations

import importlib
import pkgutil

from ..model import KineticModel


def _discover() -> dict[str, KineticModel]:
    found: dict[str, KineticModel] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        model = getattr(importlib.import_module(f"{__name__}.{info.name}"), "MODEL", None)
        if model is not None:
            if model.name in found:
                raise RuntimeError(f"two kinetic models are named {model.name!r}")
            found[model.name] = model
    return dict(sorted(found.items()))


MODELS: dict[str, KineticModel] = _discover()


def get_model(name: str) -> KineticModel:
    """The model of a command-line name; KeyError lists the choices."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; one of {', '.join(MODELS)}")
    return MODELS[name]


def voxelwise_models() -> list[str]:
    """Names of the models with a voxelwise fit."""
    return [name for name, model in MODELS.items() if model.voxelwise]
