"""Docker Registry v2 / OCI distribution client: references, auth, manifests, verified blob downloads."""

from hpcbox_registry.__about__ import __version__

__all__ = ["__version__"]
