"""Thin, typed wrappers over the cffi-compiled C core and the native files shipped beside it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Tuple, Union

from hpcbox_engine_preload import _files
from hpcbox_engine_preload._core import ffi, lib

EXPECTED_ABI = 2
PATH_MAX = 4096
PRELOAD_LIBRARY = _files.PRELOAD_LIBRARY
PRELOAD_LIBRARY_MUSL = _files.PRELOAD_LIBRARY_MUSL
LAUNCHER = _files.LAUNCHER
HERE = Path(_files.HERE)

StrPath = Union[str, "os.PathLike[str]"]


def abi_version() -> int:
    """Return the ABI version compiled into the C core."""
    return int(lib.hpcbox_preload_abi_version())


if abi_version() != EXPECTED_ABI:  # a stale build next to new Python code
    raise ImportError(
        f"hpcbox_engine_preload C core has ABI {abi_version()}, expected {EXPECTED_ABI}; reinstall"
    )


def preload_library_path() -> Path:
    """The library that the engine puts in LD_PRELOAD for glibc programs."""
    return Path(_files.preload_library_file())


def musl_library_path() -> Optional[Path]:
    """The musl build of the library, or None when the package was built without musl-gcc."""
    path = _files.musl_library_file()
    return Path(path) if path else None


def launcher_path() -> Path:
    """The host program that becomes a container's first process (launcher/launcher.c)."""
    return Path(_files.launcher_file())


def _bytes(value: StrPath, what: str) -> bytes:
    text = os.fspath(value)
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str or os.PathLike, not {type(text).__name__}")
    if "\0" in text:
        raise ValueError(f"{what} contains a NUL byte: {text!r}; paths cannot hold NUL")
    raw = os.fsencode(text)
    if len(raw) >= PATH_MAX:
        raise ValueError(f"{what} is longer than PATH_MAX ({PATH_MAX} bytes); shorten it")
    return raw


def _oserror(rc: int, path: str) -> OSError:
    return OSError(-rc, os.strerror(-rc), path)


class _Context:
    """A struct gp_context with root and bindings, freed with the object."""

    def __init__(self, root: StrPath, bindings: Iterable[Tuple[StrPath, StrPath]] = ()):
        self.ptr = ffi.gc(ffi.new("struct gp_context *"), lib.gp_context_destroy)
        rc = lib.gp_context_init(self.ptr, _bytes(root, "root"))
        if rc < 0:
            raise _oserror(rc, os.fspath(root))
        for guest, host in bindings:
            rc = lib.gp_add_binding(self.ptr, _bytes(guest, "binding guest path"),
                                    _bytes(host, "binding host path"))
            if rc < 0:
                raise ValueError(f"binding {guest}={host}: {os.strerror(-rc)}")


def translate(
    root: StrPath,
    guest_path: StrPath,
    cwd: StrPath = "/",
    bindings: Iterable[Tuple[StrPath, StrPath]] = (),
    follow: bool = True,
    *,
    parent: bool = False,
    no_mount: Union[bool, str] = False,  # True (rename), "rmdir" or "unlink"
) -> str:
    """The host path the library hands the kernel for ``guest_path`` (absolute, or relative to the
    canonical guest ``cwd``) in a container whose rootfs is ``root``, with (guest, host) bindings.
    ``parent``: the rule of the calls that create, remove or rename the final name (only the
    directory part is resolved); ``no_mount`` (True for rename, "rmdir", "unlink"): a mount point
    (a binding's guest path; "/" for rmdir) is refused as the kernel refuses it. Raises OSError
    with the errno a wrapped call fails with (ENOENT, ENOTDIR, ELOOP, ...)."""
    ctx = _Context(root, bindings)
    out = ffi.new("char[]", PATH_MAX)
    path = _bytes(guest_path, "guest_path")
    how = (lib.GP_FOLLOW_LAST if follow else 0) | (lib.GP_PARENT if parent else 0)
    if no_mount:
        how |= lib.GP_NO_MOUNT | {"rmdir": lib.GP_RMDIR, "unlink": lib.GP_UNLINK}.get(str(no_mount), 0)
    rc = lib.hpcbox_preload_translate(ctx.ptr, _bytes(cwd, "cwd"), path, how, out, PATH_MAX)
    if rc < 0:
        raise _oserror(rc, os.fspath(guest_path))
    return os.fsdecode(ffi.string(out))


def untranslate(root: StrPath, host_path: StrPath,
                bindings: Iterable[Tuple[StrPath, StrPath]] = ()) -> Tuple[str, bool]:
    """(guest path, inside) of a canonical host path, as getcwd and readlink of /proc links give it."""
    ctx = _Context(root, bindings)
    out = ffi.new("char[]", PATH_MAX)
    rc = lib.gp_to_guest(ctx.ptr, _bytes(host_path, "host_path"), out, PATH_MAX)
    if rc < 0:
        raise _oserror(rc, os.fspath(host_path))
    return os.fsdecode(ffi.string(out)), rc != lib.GP_OUTSIDE


EXEC_KINDS = {
    lib.HPCBOX_EXEC_UNKNOWN: "unknown",
    lib.HPCBOX_EXEC_SCRIPT: "script",
    lib.HPCBOX_EXEC_DYNAMIC: "dynamic",
    lib.HPCBOX_EXEC_STATIC: "static",
}


def classify(host_path: StrPath) -> Tuple[str, str]:
    """What exec makes of a host file: ("script"|"dynamic"|"static"|"unknown", PT_INTERP or "")."""
    out = ffi.new("char[]", PATH_MAX)
    rc = lib.hpcbox_preload_classify(_bytes(host_path, "host_path"), out, PATH_MAX)
    if rc < 0:
        raise _oserror(rc, os.fspath(host_path))
    return EXEC_KINDS[rc], os.fsdecode(ffi.string(out))
