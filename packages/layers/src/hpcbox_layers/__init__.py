"""Apply OCI/Docker image layers to a directory, unprivileged and safely."""

from hpcbox_layers.__about__ import __version__

__all__ = ["__version__"]
