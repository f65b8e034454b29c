"""hpcbox engine: a C ptrace tracer that translates paths (PRoot-like, faster).

``engine`` is the object registered under the ``hpcbox.engines`` entry point::

    from hpcbox_engine_ptrace import engine
    ok, reason = engine.available()
    status = engine.run("/path/to/bundle")   # a directory holding config.json

For tests and tools, the shared C path core: :func:`translate`, :func:`untranslate`,
:func:`resolve` (loaded on first use: `hpcbox run` does not need cffi).
"""

from typing import Any

from hpcbox_oci_bundle import Container

from hpcbox_engine_ptrace.__about__ import __version__
from hpcbox_engine_ptrace._engine import PtraceEngine, tracer_argv, tracer_path
from hpcbox_engine_ptrace.errors import BundleError, EngineError, UnavailableError

engine = PtraceEngine()

_NATIVE = ("abi_version", "resolve", "translate", "untranslate")


def __getattr__(name: str) -> Any:  # the C core's functions, typed in _native
    if name in _NATIVE:
        from hpcbox_engine_ptrace import _native

        return getattr(_native, name)
    raise AttributeError(f"module 'hpcbox_engine_ptrace' has no attribute {name!r}")


__all__ = [
    "BundleError",
    "Container",
    "EngineError",
    "PtraceEngine",
    "UnavailableError",
    "__version__",
    "abi_version",
    "engine",
    "resolve",
    "tracer_argv",
    "tracer_path",
    "translate",
    "untranslate",
]
