"""No import cycle among vidbench's modules: each file does one job and depends downward
(function-level imports count too, so a circle cannot hide in a deferred import)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "bench/commands", "models", "datasets")


def modules() -> dict[str, Path]:
    found = {"vidbench": ROOT / "__init__.py"}
    for package in PACKAGES:
        for path in (ROOT / package).glob("*.py"):
            parts = ["vidbench", *path.relative_to(ROOT).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """{module: the vidbench modules it imports}, a package's `from P import m` naming P.m."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vidbench"):
                submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                targets |= (submodules & known.keys()) or {node.module}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name in known}
        graph[name] = {t for t in targets if t in known and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
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
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
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


def test_the_graph_sees_the_modules_and_their_imports():
    graph = import_graph()
    assert {"vidbench.bench.runner", "vidbench.bench.cell", "vidbench.datasets.files"} <= set(graph)
    assert "vidbench.bench.cell" in graph["vidbench.bench.runner"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_vidbench_modules():
    assert cycles(import_graph()) == []
