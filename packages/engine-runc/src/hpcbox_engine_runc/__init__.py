"""hpcbox engine: rootless user namespaces, with runc/crun delegation.

``engine`` is the object registered under the ``hpcbox.engines`` entry point::

    from hpcbox_engine_runc import engine
    ok, reason = engine.available()
    status = engine.run("/path/to/bundle")   # a directory holding config.json
"""

from __future__ import annotations

from hpcbox_oci_bundle import Container

from hpcbox_engine_runc.__about__ import __version__
from hpcbox_engine_runc._bundle import Bundle, parse_bundle, resolve_in_root
from hpcbox_engine_runc._engine import RuncEngine, bring_loopback_up, runner_argv, runner_file, runner_path
from hpcbox_engine_runc.errors import BundleError, EngineError, UnavailableError

TYPE_CHECKING = False  # importing the checkers' names costs start-up time
if TYPE_CHECKING:
    from types import ModuleType

engine = RuncEngine()


def __getattr__(name: str) -> ModuleType:
    # The overlay helper pulls in platform/tempfile/subprocess: load it only when asked for,
    # so `hpcbox run` does not pay for it on every start.
    if name == "overlay":
        import importlib

        return importlib.import_module("hpcbox_engine_runc.overlay")
    raise AttributeError(f"module 'hpcbox_engine_runc' has no attribute {name!r}")

__all__ = [
    "Bundle",
    "BundleError",
    "Container",
    "EngineError",
    "RuncEngine",
    "UnavailableError",
    "__version__",
    "bring_loopback_up",
    "engine",
    "overlay",
    "parse_bundle",
    "resolve_in_root",
    "runner_argv",
    "runner_file",
    "runner_path",
]
