"""The layers point one way (README, Architecture): bids_app -> workflows (the nipype graph) ->
pure numerics (workflows/imaging, kinetics, group, simulation: no nipype, no BIDS). Every import
statement of the project, at module level or inside a function, is an edge; the rules hold for
direct and transitive imports within the project."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMERICS = ("workflows.imaging", "workflows.kinetics", "workflows.group", "workflows.simulation")
# the simulator's own command line and the demo may use the simulator; nothing else may
SIMULATOR_USERS = ("bids_app.simulate", "bids_app.cli.simulate", "bids_app.demo",
                   "workflows.simulation")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement in ``source`` names (relative imports resolved)."""
    out = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return out


def project_graph() -> dict[str, set[str]]:
    graph = {}
    for top in ("bids_app", "workflows"):
        for path in sorted((ROOT / top).rglob("*.py")):
            name = module_name(path)
            graph[name] = imports_of(path.read_text(), name, path.name == "__init__.py")
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module imported by ``start``, directly or through project modules."""
    seen, todo = set(), [start]
    while todo:
        for name in graph.get(todo.pop(), ()):
            if name not in seen:
                seen.add(name)
                if name in graph:
                    todo.append(name)
    return seen


def under(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


GRAPH = project_graph()


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if under(m, "workflows")))
def test_the_graph_and_the_numerics_never_import_the_app(module):
    assert not [m for m in reachable(GRAPH, module) if under(m, "bids_app")]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if under(m, NUMERICS)))
def test_numerics_never_import_nipype(module):
    assert not [m for m in reachable(GRAPH, module) if under(m, "nipype")]


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not under(m, SIMULATOR_USERS)))
def test_the_pipeline_never_imports_the_simulator(module):
    assert not [m for m in reachable(GRAPH, module) if under(m, "workflows.simulation")]


def test_the_checker_sees_imports_inside_functions_and_relative_ones():
    # the rules above are only as good as the import finder: a violation hidden in a function
    # body or written as a relative import must be found
    source = ("def node():\n    from bids_app.derivatives import copy_atomic\n"
              "from ..frames import x\n")
    found = imports_of(source, "workflows.kinetics.models.srtm")
    assert "bids_app.derivatives" in found and "workflows.kinetics.frames" in found
    graph = {"a": {"b"}, "b": {"nipype.pipeline"}}
    assert "nipype.pipeline" in reachable(graph, "a")
