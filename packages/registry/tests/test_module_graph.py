"""The package's modules import one way: no circles (type-checking imports included), and the
HTTP layer, the settings and the blob downloads never import the client that uses them."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import hpcbox_registry

ROOT = Path(hpcbox_registry.__file__).resolve().parent
PACKAGE = "hpcbox_registry"


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> Dict[str, Set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target not in (name, PACKAGE):
                    graph[name].add(target)
    return graph


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_walk_sees_the_modules():
    graph = _graph()
    assert {"hpcbox_registry.client", "hpcbox_registry.config", "hpcbox_registry.blobs",
            "hpcbox_registry.transport.session"} <= set(graph)
    assert "hpcbox_registry.config" in graph["hpcbox_registry.transport.session"]


def test_no_import_circle():
    assert _cycle(_graph()) == []


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_lower_modules_never_import_the_client():
    graph = _graph()
    for lower in ("hpcbox_registry.config", "hpcbox_registry.blobs", "hpcbox_registry.transport.session"):
        assert "hpcbox_registry.client" not in graph[lower], lower


def test_files_over_500_lines_say_why_in_their_header():
    for path in sorted(ROOT.rglob("*.py")):
        lines = path.read_text().splitlines()
        if len(lines) > 520:
            assert any("Over 500 lines" in line for line in lines[:30]), path.name
