"""Imports run one way (docs/ARCHITECTURE.md): read from the code itself, lazy imports included.

Pure stages (factory/video, factory/sources, factory/render) import no actor,
pipeline, training or Serve module; actors import no pipeline, training or
Serve module; Serve imports no pipeline or training module; and no two
modules of the project import each other, directly or round a longer loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("factory", "actors", "serve")

# (importer prefix, forbidden import prefixes)
RULES = [
    (("factory.video", "factory.sources", "factory.render"), ("actors", "factory.pipelines", "factory.train", "serve")),
    (("actors",), ("factory.pipelines", "factory.train", "serve")),
    (("serve",), ("factory.pipelines", "factory.train")),
]


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(REPO).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _project_modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (top level or inside functions)."""
    modules = _project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycle_finder_sees_a_loop():
    """The check itself can fail: a three-module loop is found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_imports_itself_round_a_loop():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("importers,forbidden", RULES)
def test_imports_run_one_way(importers, forbidden):
    wrong = sorted(
        (module, target)
        for module, targets in import_graph().items()
        if module.startswith(importers)
        for target in targets
        if target.startswith(forbidden)
    )
    assert wrong == []
