"""hpcbox engine: an LD_PRELOAD library that translates paths inside each container process.

``engine`` is the object the CLI uses (``available()``, ``run(config, bundle_dir=...)``);
``translate``/``untranslate``/``classify`` expose the C library's own translation and exec
classification (for tests and tools).
"""

from __future__ import annotations

from hpcbox_engine_preload.__about__ import __version__
from hpcbox_engine_preload._engine import EngineError, PreloadEngine

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

engine = PreloadEngine()

# The C core's wrappers load the cffi module (and check its ABI) on first use, not on every
# `hpcbox run --engine preload`, which needs only the shipped files (_files).
_NATIVE = ("abi_version", "classify", "launcher_path", "musl_library_path", "preload_library_path",
           "translate", "untranslate")


def __getattr__(name: str) -> Any:
    if name in _NATIVE:
        from hpcbox_engine_preload import _native

        return getattr(_native, name)
    raise AttributeError(f"module 'hpcbox_engine_preload' has no attribute {name!r}")


__all__ = [
    "EngineError",
    "PreloadEngine",
    "__version__",
    "abi_version",
    "classify",
    "engine",
    "launcher_path",
    "musl_library_path",
    "preload_library_path",
    "translate",
    "untranslate",
]
