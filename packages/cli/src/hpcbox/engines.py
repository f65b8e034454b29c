"""Find the engines and choose one.

Engines are objects that match :class:`hpcbox_oci_bundle.Engine` (``name``, ``capabilities``,
``available(**hints) -> (bool, reason)``, ``start`` and ``run(bundle, ...)``), registered under the
entry-point group ``hpcbox.engines`` (docs/architecture.md, "The engine contract"). Callers plan with
:func:`capabilities`, never with engine names. On the
hot path of `hpcbox run` the engine is known, so its module (``hpcbox_engine_<name>``) is imported
directly: scanning every installed distribution's entry points costs milliseconds. The entry points
are the fallback, and the only source for engines from other projects (`hpcbox info` lists them all).

``auto``: user namespaces (runc) where the kernel allows them, then preload for
dynamically linked programs, then ptrace. singularity is only used when asked for.
"""

from __future__ import annotations

import sys

from hpcbox_oci_bundle import contract

from hpcbox.errors import HpcboxError, UsageError

TYPE_CHECKING = False  # typing costs ~2 ms to import: only type checkers read these names
if TYPE_CHECKING:
    from typing import Any, Dict, FrozenSet, List, Optional, Tuple

GROUP = "hpcbox.engines"
KNOWN = ("runc", "ptrace", "preload", "singularity")
CHOICES = ("auto", *KNOWN)
AUTO_ORDER = ("runc", "preload", "ptrace")
EXIT_ENGINE = contract.EXIT_ENGINE  # what an engine returns when it failed before the program ran


class EngineUnavailableError(HpcboxError):
    def __init__(self, name: str, reason: str):
        super().__init__(f"engine {name} is not available: {reason}",
                         "" if ";" in reason else "run 'hpcbox info' to see which engines work here",
                         EXIT_ENGINE)
        self.name = name
        self.reason = reason


class _Missing:
    """Stands for an engine that cannot be loaded; ``available()`` says why."""

    capabilities: FrozenSet[str] = frozenset()

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason

    def available(self, **hints: Any) -> Tuple[bool, str]:
        return False, self.reason

    def start(self, *args: Any, **kwargs: Any) -> Any:
        raise EngineUnavailableError(self.name, self.reason)

    def run(self, *args: Any, **kwargs: Any) -> int:
        raise EngineUnavailableError(self.name, self.reason)


def capabilities(engine: Any) -> FrozenSet[str]:
    """What *engine* can do (:data:`hpcbox_oci_bundle.contract.CAPABILITIES`); an engine of another
    project that declares none is taken to have none."""
    return frozenset(getattr(engine, "capabilities", ()) or ())


def can(engine: Any, capability: str, runtime: Optional[str] = None) -> bool:
    """Whether *engine* has *capability* as it will run: an engine that delegates to an installed
    runtime (``--runtime runc|crun``) loses what only its builtin runner does (overlay mounts)."""
    caps = capabilities(engine)
    if runtime not in (None, "builtin") and contract.CAP_DELEGATE_RUNTIME in caps:
        caps = caps - {contract.CAP_OVERLAY}
    return capability in caps


def _entry_points() -> List[Any]:
    from importlib import metadata

    eps = metadata.entry_points()
    if hasattr(eps, "select"):
        return list(eps.select(group=GROUP))
    return list(eps.get(GROUP, ()))  # Python 3.9


def _is_engine(obj: Any) -> bool:
    return callable(getattr(obj, "available", None)) and callable(getattr(obj, "run", None))


def load(name: str, *, entry_points: Optional[List[Any]] = None) -> Any:
    """The engine object called *name*, or a stand-in whose available() explains why there is none."""
    if name in KNOWN:
        try:
            module_name = f"hpcbox_engine_{name}"
            __import__(module_name)  # importlib itself is not needed for a top-level name
            module = sys.modules[module_name]
        except ImportError:
            module = None
        engine = getattr(module, "engine", None)
        if _is_engine(engine):
            return engine
    eps = _entry_points() if entry_points is None else entry_points
    broken = None
    for ep in eps:
        if ep.name != name:
            continue
        try:
            engine = ep.load()
        except Exception as exc:  # a broken third-party plugin must not break hpcbox
            broken = f"its entry point {ep.value} fails to load ({type(exc).__name__}: {exc})"
            continue
        if _is_engine(engine):
            return engine
        broken = f"its entry point {ep.value} is not an engine (no available()/run())"
    if broken:
        return _Missing(name, broken)
    if name in KNOWN:
        package = f"hpcbox-engine-{name}"
        if module is None:
            return _Missing(name, f"the package {package} is not installed; install it with pip")
        return _Missing(name, f"{package} {getattr(module, '__version__', '')} has no engine yet "
                              "(not built in this release)".replace("  ", " "))
    return _Missing(name, f"no engine of that name is installed (entry-point group {GROUP})")


def names(entry_points: Optional[List[Any]] = None) -> List[str]:
    """Every engine name: the known ones first, then the others registered under the group."""
    eps = _entry_points() if entry_points is None else entry_points
    extra = sorted({ep.name for ep in eps} - set(KNOWN))
    return list(KNOWN) + extra


def check(engine: Any, runtime: Optional[str] = None) -> Tuple[bool, str]:
    """``engine.available(**hints)``, the runtime passed as a hint (engines ignore hints they do not
    know); never raises."""
    hints = {"runtime": runtime} if runtime and runtime != "builtin" else {}
    try:
        ok, reason = engine.available(**hints)
        return bool(ok), str(reason)
    except Exception as exc:
        return False, f"its availability check failed ({type(exc).__name__}: {exc})"


def auto_choice(statuses: Dict[str, Tuple[bool, str]]) -> Optional[str]:
    """The engine ``auto`` picks given each engine's (available, reason); None when none works."""
    for name in AUTO_ORDER:
        if statuses.get(name, (False, ""))[0]:
            return name
    return None


def resolve(requested: str, runtime: Optional[str] = None) -> Tuple[str, Any]:
    """(name, engine) for *requested*; for a named engine nothing is checked here (the fast path:
    `hpcbox run` asks ``available()`` only when the engine fails to start). ``auto`` returns runc
    when it loads, else the first available engine of AUTO_ORDER."""
    if requested not in CHOICES:
        if requested in names():
            return requested, load(requested)
        raise UsageError(f"unknown engine {requested!r}",
                         f"use --engine {'|'.join(CHOICES)} (see 'hpcbox info')")
    if requested != "auto":
        return requested, load(requested)
    first = load("runc")
    if not isinstance(first, _Missing):
        return "runc", first
    statuses = {}
    for name in AUTO_ORDER[1:]:
        engine = load(name)
        statuses[name] = ok, _ = check(engine, runtime)
        if ok:
            return name, engine
    reasons = "; ".join(f"{n}: {r}" for n, (_, r) in [("runc", (False, first.reason)), *statuses.items()])
    raise EngineUnavailableError("auto", f"no engine works here ({reasons})")


def fallbacks(after: str, runtime: Optional[str] = None, dynamic: Optional[bool] = None,
              needs: Tuple[str, ...] = ()) -> List[Tuple[str, Any]]:
    """Available engines that ``auto`` may try after *after* failed to start, by their capabilities:
    each has every capability in *needs*, and an engine that only serves dynamically linked programs
    is skipped when *dynamic* is False (see :func:`is_dynamic`)."""
    out = []
    order = list(AUTO_ORDER)
    for name in order[order.index(after) + 1:] if after in order else []:
        engine = load(name)
        if dynamic is False and not can(engine, contract.CAP_STATIC_PROGRAMS):
            continue
        if not all(can(engine, need, runtime) for need in needs):
            continue
        if check(engine, runtime)[0]:
            out.append((name, engine))
    return out


def _in_root(rootfs: str, path: str, depth: int = 0) -> Optional[str]:
    """Host path of the container's *path*, following symlinks inside *rootfs* (never out of it)."""
    import os

    parts = [p for p in path.split("/") if p not in ("", ".")]
    current = rootfs
    for index, part in enumerate(parts):
        if part == "..":
            current = current if current == rootfs else os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            if depth > 40:
                return None
            target = os.readlink(candidate)
            base = "/" if target.startswith("/") else "/" + os.path.relpath(current, rootfs)
            rest = "/".join([target, *parts[index + 1:]])
            return _in_root(rootfs, os.path.normpath(os.path.join(base, rest)), depth + 1)
        current = candidate
    return current


def is_dynamic(rootfs: str, program: str, path: str = "/usr/bin:/bin") -> Optional[bool]:
    """Whether *program* (as the container would find it, via *path*) is a dynamically linked ELF
    (a ``PT_INTERP`` header); a ``#!`` script counts as its interpreter. None when unknown."""
    import os

    from hpcbox_oci_bundle.elf import Header

    dirs = [""] if "/" in program else path.split(":")
    for directory in dirs:
        host = _in_root(rootfs, f"{directory}/{program}" if directory else program)
        if host is None or not os.path.isfile(host):
            continue
        try:
            with open(host, "rb") as handle:
                head = handle.read(64)
                if head.startswith(b"#!"):
                    line = (head + handle.read(192)).split(b"\n", 1)[0][2:].split()
                    return is_dynamic(rootfs, line[0].decode(errors="replace"), path) if line else None
                elf = Header.parse(head)
                return None if elf is None else elf.has_interpreter(handle)
        except OSError:
            return None
    return None
