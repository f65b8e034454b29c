"""The import graph of one installed package, read from its sources, and the checks the packages'
layering tests make on it: circles, and files over 500 lines without their reason.

Used by the CLI's ``tests/test_layering.py`` and the registry's ``tests/test_module_graph.py``.
Each of those packages tests alone, from the repository or from its unpacked sdist: in the
repository this module is found on pytest's path (``integration/``), and each sdist carries a copy
as ``tests/importgraph.py`` (``force-include`` in its pyproject.toml). Standard library only.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

LONG = 520  # "about 500 lines": a file a little over it needs no reason
REASON = "Over 500 lines"


def module_name(root: Path, package: str, path: Path) -> str:
    """The dotted name of the module at *path* in the package whose directory is *root*."""
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.AST) -> List[str]:
    """Every name an ``import`` or absolute ``from ... import`` statement of *tree* may load, at any
    depth (lazy imports in functions and ``if TYPE_CHECKING:`` blocks count too): for ``from a
    import b``, both ``a`` and ``a.b`` (b may be a submodule)."""
    names: List[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return names


def graph(root: Path, package: str) -> Dict[str, Set[str]]:
    """module -> the package's own modules it imports (not itself, not the package's front file)."""
    modules = {module_name(root, package, p): p for p in root.rglob("*.py")}
    edges: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        found = imports(ast.parse(path.read_text()))
        edges[name] = {t for t in found if t in modules and t not in (name, package)}
    return edges


def cycle(edges: Dict[str, Set[str]]) -> List[str]:
    """One circle of *edges* as a path that ends where it starts, or [] when there is none."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
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


def long_files_without_reason(root: Path, header_lines: int = 30,
                              suffixes: Tuple[str, ...] = (".py",)) -> List[str]:
    """The files under *root* named ``*<suffix>`` over ~500 lines whose first *header_lines* lines
    do not say "Over 500 lines: <why>" (in the module docstring or a comment; a C file's header
    comment)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in suffixes and p.is_file()):
        lines = path.read_text().splitlines()
        if len(lines) > LONG and not any(REASON in line for line in lines[:header_lines]):
            found.append(str(path.relative_to(root)))
    return found
