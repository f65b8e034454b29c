"""The CLI is layered one way: commands -> containers -> store (then the other packages). No module
imports one of a higher layer, the helper modules beside the layers import no command or container
module, and no chain of imports, lazy ones included, comes back to where it started."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

import hpcbox

ROOT = Path(hpcbox.__file__).resolve().parent
TOP = ("hpcbox.main", "hpcbox.quick", "hpcbox.__main__", "hpcbox.udocker")
COMMANDS, CONTAINERS, STORE = 3, 2, 1


def _name(path: Path) -> str:
    parts = ["hpcbox", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> Dict[str, Set[str]]:
    modules = {_name(p): p for p in ROOT.rglob("*.py")}
    edges: Dict[str, Set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            edges[name] |= {t for t in targets if t in modules and t not in (name, "hpcbox")}
    return edges


def layer(module: str) -> Optional[int]:
    if module in TOP or module.startswith("hpcbox.commands"):
        return COMMANDS
    if module.startswith("hpcbox.containers"):
        return CONTAINERS
    if module.startswith("hpcbox.store"):
        return STORE
    return None  # a helper beside the layers (errors, settings, engines, runspec, gpu, ...)


def upward(edges: Dict[str, Set[str]]) -> List[str]:
    found = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            mine, theirs = layer(module), layer(target)
            if theirs is None:
                continue
            if (mine is None and theirs >= CONTAINERS) or (mine is not None and theirs > mine):
                found.append(f"{module} -> {target}")
    return found


def cycle(edges: Dict[str, Set[str]]) -> List[str]:
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_the_walk_sees_every_layer():
    edges = graph()
    assert {"hpcbox.commands.run", "hpcbox.containers.store", "hpcbox.store.layout"} <= set(edges)
    assert "hpcbox.containers" in edges["hpcbox.commands.run"]  # lazy imports count
    assert {layer(m) for m in edges} == {COMMANDS, CONTAINERS, STORE, None}


def test_no_import_goes_up_a_layer():
    assert upward(graph()) == []


def test_no_import_circle():
    assert cycle(graph()) == []


def test_the_checks_find_what_they_look_for():
    edges = {"hpcbox.store.a": {"hpcbox.containers"}, "hpcbox.containers": {"hpcbox.store.a"},
             "hpcbox.settings": {"hpcbox.commands.x"}, "hpcbox.commands.x": set()}
    assert upward(edges) == ["hpcbox.settings -> hpcbox.commands.x", "hpcbox.store.a -> hpcbox.containers"]
    assert cycle(edges) == ["hpcbox.containers", "hpcbox.store.a", "hpcbox.containers"]


def test_files_over_500_lines_say_why_in_their_header():
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 520:
            header = ast.get_docstring(ast.parse(text)) or ""
            assert "Over 500 lines" in header, f"{path.relative_to(ROOT)}: split it or say why in its header"
