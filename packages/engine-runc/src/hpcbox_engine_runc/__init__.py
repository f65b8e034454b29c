"""hpcbox engine: rootless user namespaces, with runc/crun delegation."""

from hpcbox_engine_runc.__about__ import __version__

__all__ = ["__version__"]
