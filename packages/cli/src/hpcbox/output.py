"""Output helpers: human sizes, tables that fit the terminal, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional, Sequence, TextIO


def note(text: str) -> None:
    """One ``hpcbox: note:`` line on stderr: something the user should know, not an error."""
    sys.stderr.write(f"hpcbox: note: {text}\n")


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n} B"  # unreachable


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], stream: Optional[TextIO] = None) -> None:
    """Left-aligned columns; lines are cut to the terminal width when on a terminal."""
    stream = stream or sys.stdout
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [headers, *rows]
    if stream.isatty():
        import shutil  # lazily (~2 ms with bz2 and lzma): `hpcbox run IMAGE` imports this module for note()

        limit = shutil.get_terminal_size((200, 24)).columns
    else:
        limit = None
    for line in lines:
        text = "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
        if limit and len(text) > limit:
            text = text[: max(limit - 1, 10)] + "…"
        stream.write(text + "\n")


def print_json(value: Any, stream: Optional[TextIO] = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(value, indent=2) + "\n")
