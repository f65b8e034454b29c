"""hpcbox engine: an LD_PRELOAD library that translates paths (fakechroot-like)."""

from hpcbox_engine_preload.__about__ import __version__
from hpcbox_engine_preload._native import abi_version, preload_library_path

__all__ = ["__version__", "abi_version", "preload_library_path"]
