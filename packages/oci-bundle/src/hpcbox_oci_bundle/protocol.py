"""The typed engine contract: what every hpcbox engine object provides (docs/architecture.md,
"The engine contract"). Engines need not inherit from :class:`Engine`; they match it by shape, which
type checkers verify and ``isinstance(obj, Engine)`` checks at run time (names only).

Kept apart from :mod:`hpcbox_oci_bundle.contract` because :mod:`typing` costs milliseconds to import
and ``hpcbox run`` does not need it.
"""

from __future__ import annotations

import os
from typing import IO, Any, FrozenSet, Mapping, Optional, Protocol, Tuple, Union, runtime_checkable

#: what ``start``/``run`` accept as the bundle: its directory, its config.json, or the config itself
BundleArg = Union[str, "os.PathLike[str]", Mapping[str, Any]]
#: a stream given to the container: a file object, a file descriptor, or None to inherit hpcbox's
Stream = Union[None, int, IO[Any]]


@runtime_checkable
class Running(Protocol):
    """A started container (:class:`hpcbox_oci_bundle.Container` or a subclass)."""

    pid: int

    def send_signal(self, sig: int) -> None: ...

    def poll(self) -> Optional[int]: ...

    def wait(self, timeout: Optional[float] = None) -> int: ...


@runtime_checkable
class Engine(Protocol):
    """An engine: runs an OCI runtime bundle.

    - ``name``: how users choose it (``--engine NAME``, the entry point's name);
    - ``capabilities``: which of :data:`hpcbox_oci_bundle.contract.CAPABILITIES` (and any of its
      own) it has; callers plan with these instead of engine names;
    - ``available(**hints)``: ``(True, what works)`` or ``(False, what to do)``, never raising;
      hints an engine does not know (``proc_root``, ``runtime``, ...) are ignored;
    - ``start``: starts the container and returns at once; ``run``: to completion, returning the
      exit status (the program's, 128+n for signal n, or 125/126/127 of
      :mod:`hpcbox_oci_bundle.contract`). Both raise :class:`~hpcbox_oci_bundle.EngineError`
      subclasses for problems found before anything started.
    """

    name: str
    capabilities: FrozenSet[str]

    def available(self, **hints: Any) -> Tuple[bool, str]: ...

    def start(self, bundle: BundleArg, *, bundle_dir: Optional[str] = None, stdin: Stream = None,
              stdout: Stream = None, stderr: Stream = None) -> Running: ...

    def run(self, bundle: BundleArg, *, bundle_dir: Optional[str] = None, stdin: Stream = None,
            stdout: Stream = None, stderr: Stream = None, forward_signals: bool = True) -> int: ...
