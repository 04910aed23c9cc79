"""The source's import graph, imports inside functions included: no circles, and no import against
the layer floors of docs/architecture.md (domain < data < models < eval < train < apps < cli;
errors, typed_config and utils/ are the ground every layer stands on)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "microgesture"
# The floor of each top-level part: a module imports only modules on its floor or below.
FLOORS = {"errors": 0, "typed_config": 0, "utils": 0, "domain": 1, "data": 2, "models": 3, "eval": 4,
          "train": 5, "apps": 6, "cli": 7}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The package module `name` refers to: itself, or the longest prefix that is a module."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """Dotted names an import statement reads: `from a import b` reads the submodule a.b when there
    is one, else a (a package's own __init__ runs with any of its modules: not an edge of its own)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: counted from the importing module's package
        anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """{module: the package modules it imports anywhere in its source (lazy imports included)}."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for dotted in _imported(node, name, path.name == "__init__.py", modules):
                target = _resolve(dotted, modules) if dotted.startswith(PACKAGE + ".") else None
                if target and target != name and target != PACKAGE:
                    targets.add(target)
        graph[name] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def floor(module: str) -> int:
    part = module.split(".")[1] if "." in module else module
    if part not in FLOORS:
        raise AssertionError(f"{module}: not on any floor of docs/architecture.md; give it one in FLOORS")
    return FLOORS[part]


def test_the_graph_sees_lazy_imports():
    graph = import_graph()
    assert "microgesture.apps.demo" in graph["microgesture.cli"]  # imported inside a command handler
    assert "microgesture.models.agcn" in graph["microgesture.train.cards"]  # inside a builder


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_circles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_no_import_against_the_floors():
    against = [f"{module} -> {target}" for module, targets in import_graph().items()
               for target in sorted(targets) if floor(target) > floor(module)]
    assert against == []
