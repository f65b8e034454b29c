"""Rules over the repository's Python sources that no one package's tests can see whole.

- Media types are spelt in one place: hpcbox_oci_bundle.mediatypes. No other module of any package
  (docstrings included) writes one as a string; they import the constants. Tests and their fixtures
  keep their own spellings on purpose: they check the code against the specifications, not against
  itself.
- No Python or C file (sources, tests, fixtures, benchmarks, scripts; *.c and *.h) is over ~500
  lines without its reason in its header.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import List

from hpcbox_testing import importgraph

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "packages" / "oci-bundle" / "src" / "hpcbox_oci_bundle" / "mediatypes.py"
MEDIA_TYPE = re.compile(r"application/(vnd\.(oci|docker)\.|x-tar\b)")


def stray_literals(text: str, where: str) -> List[str]:
    """``where:line: literal`` for every string constant of *text* that holds a media type."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and MEDIA_TYPE.search(node.value):
            found.append(f"{where}:{node.lineno}: {node.value[:70]!r}")
    return found


def test_no_module_but_the_one_source_spells_a_media_type():
    sources = sorted(ROOT.glob("packages/*/src/**/*.py"))
    assert SOURCE in sources and len(sources) > 100
    found = [hit for path in sources if path != SOURCE
             for hit in stray_literals(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "import these from hpcbox_oci_bundle.mediatypes:\n" + "\n".join(found)
    assert len(stray_literals(SOURCE.read_text(), "mediatypes.py")) >= 15


def test_the_search_finds_what_it_looks_for():
    text = ('"""doc: application/vnd.oci.image.index.v1+json"""\n'
            'A = "application/vnd.docker.image.rootfs.diff.tar"\nB = f"{A}; application/x-tar"\n'
            'C = "application/json"  # application/vnd.oci.image.layer.v1.tar in a comment\n')
    assert [hit.split(":")[1] for hit in stray_literals(text, "t.py")] == ["1", "2", "3"]


def test_files_over_500_lines_say_why_in_their_header():
    found = [f"{top}/{name}" for top in ("packages", "integration", "bench", "scripts", "csrc", "packaging")
             for name in importgraph.long_files_without_reason(ROOT / top, suffixes=(".py", ".c", ".h"))]
    assert found == [], "split them or say why in their header (\"Over 500 lines: ...\")"


def test_the_size_rule_sees_c_files_and_their_reason(tmp_path):
    body = "int x;\n" * 600
    (tmp_path / "long.c").write_text("/* a file */\n" + body)
    (tmp_path / "said.c").write_text("/* a file.\n * Over 500 lines: one state machine. */\n" + body)
    (tmp_path / "long.h").write_text(body)
    (tmp_path / "short.c").write_text("int x;\n")
    found = importgraph.long_files_without_reason(tmp_path, suffixes=(".py", ".c", ".h"))
    assert found == ["long.c", "long.h"]
    assert importgraph.long_files_without_reason(tmp_path) == []
