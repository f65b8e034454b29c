"""Thin, typed wrappers over the cffi-compiled C core."""

from hpcbox_engine_ptrace._core import lib

EXPECTED_ABI = 1


def abi_version() -> int:
    """Return the ABI version compiled into the C core."""
    return int(lib.hpcbox_ptrace_abi_version())


if abi_version() != EXPECTED_ABI:  # a stale build next to new Python code
    raise ImportError(
        f"hpcbox_engine_ptrace C core has ABI {abi_version()}, expected {EXPECTED_ABI}; reinstall"
    )
