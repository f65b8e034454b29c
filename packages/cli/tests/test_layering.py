"""The CLI is layered one way: commands -> containers -> store (then the other packages). No module
imports one of a higher layer, the helper modules beside the layers import no command or container
module, and no chain of imports, lazy ones included, comes back to where it started."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Set

import hpcbox

try:
    from hpcbox_testing import importgraph  # the repository's copy: integration/ is on pytest's path
except ImportError:  # an unpacked sdist carries it beside this file
    import importgraph

ROOT = Path(hpcbox.__file__).resolve().parent
TOP = ("hpcbox.main", "hpcbox.quick", "hpcbox.quickimage", "hpcbox.__main__", "hpcbox.udocker")
COMMANDS, CONTAINERS, STORE = 3, 2, 1


def graph() -> Dict[str, Set[str]]:
    return importgraph.graph(ROOT, "hpcbox")


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
    return importgraph.cycle(edges)


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


def test_the_length_check_finds_a_long_file_without_its_reason(tmp_path):
    (tmp_path / "short.py").write_text("x = 1\n" * 500)
    (tmp_path / "why.py").write_text('"""Over 500 lines: one table."""\n' + "x = 1\n" * 600)
    (tmp_path / "long.py").write_text('"""A module."""\n' + "x = 1\n" * 600)
    assert importgraph.long_files_without_reason(tmp_path) == ["long.py"]


def test_files_over_500_lines_say_why_in_their_header():
    assert importgraph.long_files_without_reason(ROOT) == [], "split them or say why in their header"
