"""The package's modules import one way: no circles (type-checking imports included), and the
HTTP layer, the settings and the blob downloads never import the client that uses them."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Set

import hpcbox_registry

try:
    from hpcbox_testing import importgraph  # the repository's copy: integration/ is on pytest's path
except ImportError:  # an unpacked sdist carries it beside this file
    import importgraph

ROOT = Path(hpcbox_registry.__file__).resolve().parent
PACKAGE = "hpcbox_registry"


def _graph() -> Dict[str, Set[str]]:
    return importgraph.graph(ROOT, PACKAGE)


_cycle = importgraph.cycle


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
    assert importgraph.long_files_without_reason(ROOT) == [], "split them or say why in their header"
