"""Where the package's native files are, as strings: the run path (``PreloadEngine.start``) imports
neither pathlib nor the cffi core (~5 ms of every `hpcbox run --engine preload`)."""

from __future__ import annotations

import os

from hpcbox_oci_bundle import helper_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

PRELOAD_LIBRARY = "libhpcbox-preload.so"
PRELOAD_LIBRARY_MUSL = "libhpcbox-preload-musl.so"
LAUNCHER = "hpcbox-preload-exec"
HERE = os.path.dirname(os.path.realpath(__file__))


def shipped(name: str) -> str:
    """A file the package ships (or $HPCBOX_LIBEXEC_DIR holds); FileNotFoundError naming the fix."""
    path = helper_file(HERE, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing; reinstall hpcbox-engine-preload")
    return path


def preload_library_file() -> str:
    """The library that the engine puts in LD_PRELOAD for glibc programs."""
    return shipped(PRELOAD_LIBRARY)


def musl_library_file() -> Optional[str]:
    """The musl build of the library, or None when the package was built without musl-gcc."""
    path = helper_file(HERE, PRELOAD_LIBRARY_MUSL)
    return path if os.path.isfile(path) else None


def launcher_file() -> str:
    """The host program that becomes a container's first process (launcher/launcher.c)."""
    return shipped(LAUNCHER)
