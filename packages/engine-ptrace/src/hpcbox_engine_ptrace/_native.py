"""Thin, typed wrappers over the cffi-compiled C core."""

from __future__ import annotations

import errno
import os
from typing import Iterable, Tuple, Union

from hpcbox_engine_ptrace._core import ffi, lib

EXPECTED_ABI = 1
PATH_MAX = 4096

StrPath = Union[str, "os.PathLike[str]"]
NoMount = Union[bool, str]  # True (rename), "rmdir" or "unlink": see translate()


def abi_version() -> int:
    """Return the ABI version compiled into the C core."""
    return int(lib.hpcbox_ptrace_abi_version())


if abi_version() != EXPECTED_ABI:  # a stale build next to new Python code
    raise ImportError(
        f"hpcbox_engine_ptrace C core has ABI {abi_version()}, expected {EXPECTED_ABI}; reinstall"
    )


def _text(value: object, what: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str or os.PathLike, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{what} contains a NUL byte: {value!r}; paths cannot hold NUL")
    if len(os.fsencode(value)) >= PATH_MAX:
        raise ValueError(f"{what} is longer than PATH_MAX ({PATH_MAX} bytes); shorten it")
    return value


def _absolute(value: object, what: str) -> str:
    text = _text(value, what)
    if not text.startswith("/"):
        raise ValueError(f"{what} must be an absolute path (start with /), got {text!r}")
    return text


def _raise(rc: int, *paths: str) -> None:
    code = -rc
    raise OSError(code, os.strerror(code), *paths[:1])


class _Context:
    """A struct gp_context, freed with the object."""

    def __init__(self, root: StrPath, bindings: Iterable[Tuple[StrPath, StrPath]] = ()):
        root_s = _absolute(root, "root")
        self._ptr = ffi.gc(ffi.new("struct gp_context *"), lib.gp_context_destroy)
        rc = lib.gp_context_init(self._ptr, os.fsencode(root_s))
        if rc < 0:
            _raise(rc, root_s)
        for pair in bindings:
            try:
                guest, host = pair
            except (TypeError, ValueError):
                raise ValueError(f"a binding must be a (guest, host) pair, got {pair!r}") from None
            guest_s = _absolute(guest, "binding guest path")
            host_s = _absolute(host, "binding host path")
            rc = lib.gp_add_binding(self._ptr, os.fsencode(guest_s), os.fsencode(host_s))
            if rc == -errno.EINVAL:
                raise ValueError(f"a binding cannot be at the guest root (got {guest_s!r}); use root=")
            if rc < 0:
                _raise(rc, host_s)

    def set_cwd(self, cwd: StrPath) -> None:
        rc = lib.gp_set_cwd(self._ptr, os.fsencode(_absolute(cwd, "cwd")))
        if rc < 0:
            _raise(rc, os.fspath(cwd))

    def to_host(self, path: str, follow: bool, *, parent: bool = False, no_mount: NoMount = False) -> str:
        out = ffi.new("char[]", PATH_MAX)
        rc = lib.gp_to_host(self._ptr, os.fsencode(path), _flags(follow, parent, no_mount), out,
                            PATH_MAX)
        if rc < 0:
            _raise(rc, path)
        return os.fsdecode(ffi.string(out))

    def canonical(self, path: str, follow: bool, *, parent: bool = False, no_mount: NoMount = False) -> str:
        out = ffi.new("char[]", PATH_MAX)
        rc = lib.gp_canonical(self._ptr, os.fsencode(path), _flags(follow, parent, no_mount), out,
                              PATH_MAX)
        if rc < 0:
            _raise(rc, path)
        return os.fsdecode(ffi.string(out))

    def to_guest(self, host_path: str) -> Tuple[str, bool]:
        out = ffi.new("char[]", PATH_MAX)
        rc = lib.gp_to_guest(self._ptr, os.fsencode(host_path), out, PATH_MAX)
        if rc < 0:
            _raise(rc, host_path)
        return os.fsdecode(ffi.string(out)), rc != lib.GP_OUTSIDE


def _flags(follow: bool, parent: bool, no_mount: NoMount) -> int:
    """gp_to_host's flags; no_mount: True (rename), "rmdir" or "unlink" (guestpath.h)."""
    flags = (lib.GP_FOLLOW_LAST if follow else 0) | (lib.GP_PARENT if parent else 0)
    if no_mount:
        flags |= lib.GP_NO_MOUNT | {"rmdir": lib.GP_RMDIR, "unlink": lib.GP_UNLINK}.get(str(no_mount), 0)
    return flags


def translate(
    root: StrPath,
    guest_path: StrPath,
    cwd: StrPath = "/",
    bindings: Iterable[Tuple[StrPath, StrPath]] = (),
    follow: bool = True,
    *,
    parent: bool = False,
    no_mount: NoMount = False,
) -> str:
    """Host path of ``guest_path`` as a program contained in ``root`` sees it.

    ``cwd`` is the guest's canonical working directory; ``bindings`` are (guest prefix, host path)
    pairs; ``follow`` resolves a final symlink (stat) or not (lstat). Raises OSError with the errno
    the kernel would give (ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, ...). A missing final component is
    not an error: the result is where it would be created. ``parent`` is the rule of the calls that
    create, remove or rename the final name (mkdir, rmdir, unlink, rename, ...): only the directory
    part is resolved and the final name is kept as written; ``no_mount`` (True for rename, "rmdir",
    "unlink") then refuses a mount point (a binding's guest path; "/" for rmdir) as the kernel
    does. Semantics: csrc/guestpath/guestpath.h.
    """
    ctx = _Context(root, bindings)
    ctx.set_cwd(cwd)
    return ctx.to_host(_text(guest_path, "guest_path"), follow, parent=parent, no_mount=no_mount)


def resolve(
    root: StrPath,
    guest_path: StrPath,
    cwd: StrPath = "/",
    bindings: Iterable[Tuple[StrPath, StrPath]] = (),
    follow: bool = True,
    *,
    parent: bool = False,
    no_mount: NoMount = False,
) -> str:
    """Canonical guest path of ``guest_path`` (the guest's realpath); errors as :func:`translate`."""
    ctx = _Context(root, bindings)
    ctx.set_cwd(cwd)
    return ctx.canonical(_text(guest_path, "guest_path"), follow, parent=parent, no_mount=no_mount)


def untranslate(
    root: StrPath,
    host_path: StrPath,
    bindings: Iterable[Tuple[StrPath, StrPath]] = (),
    strict: bool = False,
) -> str:
    """Guest path of an absolute, canonical ``host_path`` (for getcwd, readlink of /proc/self/cwd).

    Under a binding's host path it maps to the binding's guest prefix (the longest host prefix
    wins, a binding wins over the root); under ``root`` to the guest path. A host path under
    neither comes back unchanged (normalised) - or, with ``strict=True``, raises ValueError.
    """
    host_s = _absolute(host_path, "host_path")
    guest, inside = _Context(root, bindings).to_guest(host_s)
    if not inside and strict:
        raise ValueError(
            f"host path {host_s!r} is outside the container's root and bindings; it has no guest path"
        )
    return guest


__all__ = ["abi_version", "resolve", "translate", "untranslate"]
