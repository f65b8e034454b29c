"""hpcbox engine: run the sandbox through the host's Apptainer/Singularity."""

from hpcbox_engine_singularity.__about__ import __version__

__all__ = ["__version__"]
