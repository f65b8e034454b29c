"""Thin, typed wrappers over the cffi-compiled C core and the LD_PRELOAD library."""

from pathlib import Path

from hpcbox_engine_preload._core import lib

EXPECTED_ABI = 1
PRELOAD_LIBRARY = "libhpcbox-preload.so"


def abi_version() -> int:
    """Return the ABI version compiled into the C core."""
    return int(lib.hpcbox_preload_abi_version())


def preload_library_path() -> Path:
    """Path of the shared library that the engine puts in LD_PRELOAD."""
    path = Path(__file__).resolve().parent / PRELOAD_LIBRARY
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall hpcbox-engine-preload")
    return path


if abi_version() != EXPECTED_ABI:  # a stale build next to new Python code
    raise ImportError(
        f"hpcbox_engine_preload C core has ABI {abi_version()}, expected {EXPECTED_ABI}; reinstall"
    )
