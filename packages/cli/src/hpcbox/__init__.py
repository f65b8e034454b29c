"""Run Docker/OCI containers on HPC systems without root, daemon or administrator."""

from hpcbox.__about__ import __version__

__all__ = ["__version__"]
