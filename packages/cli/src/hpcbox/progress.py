"""Pull progress: a bar per layer on a terminal; elsewhere nothing, or one line per layer when asked.

Hand-written rather than `rich`: ~80 lines, no dependency to install on clusters, and nothing
to import at start-up (rich costs ~40 ms to import, a third of our start budget).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Dict, List, Optional, TextIO

from hpcbox.output import human_size
from hpcbox.store.pull import PullProgress

_BAR = 30


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


class LineProgress(PullProgress):
    """One line per layer when it is stored (for logs and batch jobs)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.lock = threading.Lock()
        self.sizes: Dict[str, int] = {}

    def layer_start(self, digest: str, size: int, done: int) -> None:
        self.sizes[digest] = size

    def layer_done(self, digest: str, status: str) -> None:
        size = self.sizes.get(digest)
        text = "already exists" if status == "exists" else "downloaded"
        if status != "exists" and size and size > 0:
            text += f" {human_size(size)}"
        with self.lock:
            self.stream.write(f"{short(digest)}: {text}\n")
            self.stream.flush()


class BarProgress(PullProgress):
    """A redrawn block of bars, one line per layer (ANSI cursor movement)."""

    def __init__(self, stream: TextIO, interval: float = 0.1):
        self.stream = stream
        self.interval = interval
        self.lock = threading.Lock()
        self.order: List[str] = []
        self.state: Dict[str, List[Any]] = {}  # digest -> [done, size, status]
        self.drawn = 0
        self.last = 0.0

    def _line(self, digest: str) -> str:
        done, size, status = self.state[digest]
        if status == "exists":
            return f"{short(digest)}: already exists"
        if status == "downloaded":
            return f"{short(digest)}: done {human_size(size)}"
        if size <= 0:
            return f"{short(digest)}: {human_size(done)}"
        frac = min(1.0, done / size)
        fill = int(frac * _BAR)
        return f"{short(digest)}: [{'#' * fill}{' ' * (_BAR - fill)}] {human_size(done)}/{human_size(size)}"

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        out = []
        if self.drawn:
            out.append(f"\x1b[{self.drawn}F")
        out.extend(f"\x1b[2K{self._line(d)}\n" for d in self.order)
        self.stream.write("".join(out))
        self.stream.flush()
        self.drawn = len(self.order)

    def layer_start(self, digest: str, size: int, done: int) -> None:
        with self.lock:
            if digest not in self.state:
                self.order.append(digest)
            self.state[digest] = [done, size, "active"]
            self._draw(force=True)

    def layer_advance(self, digest: str, n_bytes: int) -> None:
        with self.lock:
            if digest in self.state:
                self.state[digest][0] += n_bytes
                self._draw()

    def layer_done(self, digest: str, status: str) -> None:
        with self.lock:
            if digest not in self.state:
                self.order.append(digest)
                self.state[digest] = [0, 0, status]
            self.state[digest][2] = status
            self._draw(force=True)


MODES = ("auto", "bars", "lines", "none")


def for_stream(stream: Optional[TextIO] = None, quiet: bool = False,
               mode: Optional[str] = None) -> PullProgress:
    """The progress display for *stream*: *mode* (else ``$HPCBOX_PROGRESS``, else ``auto``) ``auto`` draws
    bars on a terminal and writes nothing otherwise (a program's captured stderr must hold only what the
    program wrote), ``bars``, ``lines`` (one line per layer, for logs) or ``none``; *quiet* is ``none``."""
    import os

    stream = stream or sys.stderr
    mode = mode or os.environ.get("HPCBOX_PROGRESS") or "auto"
    if mode not in MODES:
        from hpcbox.errors import UsageError

        raise UsageError(f"unknown progress mode {mode!r}", f"use one of {', '.join(MODES)} "
                         "(--progress or HPCBOX_PROGRESS)")
    if quiet or mode == "none":
        return PullProgress()
    if mode == "auto":
        isatty = getattr(stream, "isatty", None)
        mode = "bars" if isatty and isatty() else "none"
    return {"bars": BarProgress, "lines": LineProgress}.get(mode, lambda _s: PullProgress())(stream)
