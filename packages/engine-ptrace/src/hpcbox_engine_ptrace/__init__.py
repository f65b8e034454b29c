"""hpcbox engine: a C ptrace tracer that translates paths (PRoot-like, faster)."""

from hpcbox_engine_ptrace.__about__ import __version__
from hpcbox_engine_ptrace._native import abi_version

__all__ = ["__version__", "abi_version"]
