"""hpcbox engine: run an OCI bundle's rootfs as a sandbox through the site's Apptainer/Singularity.

``engine`` is the object registered under the ``hpcbox.engines`` entry point::

    from hpcbox_engine_singularity import engine
    ok, reason = engine.available()
    status = engine.run("/path/to/bundle")   # a directory holding config.json
"""

from hpcbox_engine_singularity.__about__ import __version__
from hpcbox_engine_singularity._bundle import Bind, Bundle, parse_bundle, resolve_in_root
from hpcbox_engine_singularity._command import Command, build_command
from hpcbox_engine_singularity._engine import Container, SingularityEngine
from hpcbox_engine_singularity._probe import Installation, find_binary, parse_features, parse_version, probe
from hpcbox_engine_singularity.errors import BundleError, EngineError, UnavailableError

engine = SingularityEngine()

__all__ = [
    "Bind",
    "Bundle",
    "BundleError",
    "Command",
    "Container",
    "EngineError",
    "Installation",
    "SingularityEngine",
    "UnavailableError",
    "__version__",
    "build_command",
    "engine",
    "find_binary",
    "parse_bundle",
    "parse_features",
    "parse_version",
    "probe",
    "resolve_in_root",
]
