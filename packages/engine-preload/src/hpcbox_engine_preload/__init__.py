"""hpcbox engine: an LD_PRELOAD library that translates paths inside each container process.

``engine`` is the object the CLI uses (``available()``, ``run(config, bundle_dir=...)``);
``translate``/``untranslate``/``classify`` expose the C library's own translation and exec
classification (for tests and tools).
"""

from hpcbox_engine_preload.__about__ import __version__
from hpcbox_engine_preload._engine import EngineError, PreloadEngine
from hpcbox_engine_preload._native import (
    abi_version,
    classify,
    launcher_path,
    musl_library_path,
    preload_library_path,
    translate,
    untranslate,
)

engine = PreloadEngine()

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
