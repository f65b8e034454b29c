"""hpcbox engine: a C ptrace tracer that translates paths (PRoot-like, faster).

Today: the shared guest-path core (csrc/guestpath) through :func:`translate`,
:func:`untranslate` and :func:`resolve`. The tracer itself is issue 5.
"""

from hpcbox_engine_ptrace.__about__ import __version__
from hpcbox_engine_ptrace._native import abi_version, resolve, translate, untranslate

__all__ = ["__version__", "abi_version", "resolve", "translate", "untranslate"]
