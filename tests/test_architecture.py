"""The shape of the code base, checked: small units, one-way imports, no cycles.

Issue 16's bars as tests, so a later change that grows a module past 600 lines, a function past
80, or makes two modules import each other fails here with the place named. Generated code (the
protobuf stubs) and the simulator's data tables are exempt.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("features", "scoring", "server", "training", "bench", "clients", "deploy")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
EXEMPT = {
    # The simulator's data tables: goods, sectors, origins and routes as literals.
    "training/simulate/catalogue.py",
}
# Which layer may import which: data flows server -> scoring -> features, training -> both.
LAYERS = {
    "features": {"features"},
    "scoring": {"scoring", "features"},
    "server": {"server", "scoring", "features"},
    "training": {"training", "scoring", "features"},
}
# The one composition root: ``centinela`` wires the server to the analyst CLI and bootstraps a
# model through ``training`` on a fresh machine.
COMPOSITION_ROOTS = {"server.cli"}


def _generated(path: Path) -> bool:
    return "_pb2" in path.name


@cache
def project_files() -> tuple[Path, ...]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if _generated(path) or str(rel) in EXEMPT or any(p.startswith(".") for p in rel.parts):
                continue
            files.append(path)
    return tuple(files)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a submodule, not its package, when named)."""
    modules = {_module_name(p): p for p in project_files()}
    # Generated and exempt modules are still import targets, just not checked for size.
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            modules.setdefault(_module_name(path), path)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    base_parts = here[: len(here) - node.level + 1]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    deps.add(sub if sub in modules else base)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root, children in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(children)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            child = next(pending, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_over_the_line_limit() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in project_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_the_line_limit() -> None:
    long = []
    for path in project_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_import_cycles() -> None:
    assert _cycles(import_graph()) == []


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_import_one_way(layer: str) -> None:
    wrong = sorted(
        f"{module} imports {dep}"
        for module, deps in import_graph().items()
        if module.split(".")[0] == layer and module not in COMPOSITION_ROOTS
        for dep in deps
        if dep.split(".")[0] in LAYERS and dep.split(".")[0] not in LAYERS[layer]
    )
    assert wrong == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The checker itself can fail: a planted two-module loop is reported."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert _cycles(graph) == [["a", "b"]]
