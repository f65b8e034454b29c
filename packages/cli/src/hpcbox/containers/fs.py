"""Filesystem helpers of the container store: copy a rootfs (keeping its owners where the caller has
subordinate ids), delete a tree an unprivileged user made (directories that lost u+rwx, files of the
caller's subordinate ids)."""

from __future__ import annotations

import os
import stat

from hpcbox.containers.errors import ContainerError
from hpcbox.errors import EXIT_FAILURE

TYPE_CHECKING = False  # `hpcbox run --rm` removes its container with this module: no typing, pathlib
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, Dict, Optional, Tuple


def _make_writable(path: str) -> None:
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode) | 0o700)
    except OSError:
        pass


def _foreign(path: str) -> bool:
    try:
        return os.lstat(path).st_uid != os.geteuid()
    except OSError:
        return False


def remove_tree(path: os.PathLike[str] | str) -> None:
    """Delete a tree made by an unprivileged user even where a directory lost its u+rwx bits."""
    top = os.fspath(path)
    if not os.path.lexists(top):
        return
    if not os.path.isdir(top) or os.path.islink(top):
        os.unlink(top)
        return
    from hpcbox.storefiles import remove_plain_tree

    if remove_plain_tree(top):  # the usual tree, without shutil (which imports re: ~3 ms of `run --rm`)
        return
    import shutil  # lazily here and below: `hpcbox run` of an existing container needs none of it

    # a directory we cannot list or write: give it u+rwx, retry
    def onerror(func: Callable[[str], object], failed: str,
                exc_info: Tuple[type, BaseException, object]) -> None:
        exc = exc_info[1]
        if isinstance(exc, FileNotFoundError):
            return
        if not isinstance(exc, PermissionError) or _foreign(failed) or _foreign(os.path.dirname(failed)):
            raise exc  # chmod cannot help with another id's files: see _remove_mapped
        _make_writable(os.path.dirname(failed))
        _make_writable(failed)
        if func in (os.rmdir, os.unlink) or func is os.lstat:
            func(failed)
        else:  # os.scandir/os.open of a directory: walk it again now that it is readable
            shutil.rmtree(failed, onerror=onerror)

    _make_writable(top)
    try:
        shutil.rmtree(top, onerror=onerror)
    except PermissionError:
        _remove_mapped(top)


def mapped_runner() -> Optional[Callable[[Callable[[], None], str], Optional[str]]]:
    """``run(action, what)`` of hpcbox-engine-runc's idmap where this host grants the caller a range
    of subordinate ids (files that a runc container with the full map gave to its users belong to
    them), else None. See ``hpcbox_engine_runc.idmap.run_mapped``."""
    try:
        from hpcbox_engine_runc import idmap
    except ImportError:  # pragma: no cover - the runc engine is a dependency
        return None
    return idmap.run_mapped if idmap.plan(0, 0).possible else None


def _remove_mapped(top: str) -> None:
    """What is left belongs to the caller's subordinate ids (a runc container with a full id map
    gave files to its users, e.g. apt's ``_apt``): delete it inside a namespace that maps them."""
    try:
        from hpcbox_engine_runc import idmap
    except ImportError:  # pragma: no cover - the runc engine is a dependency
        idmap = None  # type: ignore[assignment]
    why = idmap.remove_tree(top) if idmap is not None else "hpcbox-engine-runc is not installed"
    if why is not None or os.path.lexists(top):
        raise PermissionError(13, f"cannot delete files in {top} owned by other ids ({why or 'left over'})")


def copy_rootfs(source: Path, dest: Path) -> None:
    """:func:`copy_tree` of a container's rootfs. Where the caller has subordinate ids, the copy runs
    in a user namespace that maps them, so files a container gave to other users (apt's ``_apt``, a
    package's system group) are read and keep their owners; else the copy is the caller's."""
    run = mapped_runner()
    if run is not None:
        try:
            why = run(lambda: copy_tree(source, dest, keep_owners=True), f"copying {source}")
        except OSError as exc:
            raise ContainerError(str(exc), "check the ranges of /etc/subuid and /etc/subgid, or "
                                 "free space; nothing was kept", EXIT_FAILURE) from None
        if why is None:
            return
    copy_tree(source, dest)


def copy_tree(source: Path, dest: Path, keep_owners: bool = False) -> None:
    """Copy a rootfs: regular files, directories, symlinks verbatim, hardlinks as hardlinks; modes
    and mtimes kept (and owners with *keep_owners*, which needs the privilege to give files away);
    device nodes (which unprivileged extraction never makes) skipped."""
    import contextlib
    import shutil

    def own(dst: str, st: os.stat_result) -> None:
        if keep_owners and (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            os.lchown(dst, st.st_uid, st.st_gid)  # before the mode: chown drops set-id bits

    inodes: Dict[Tuple[int, int], str] = {}
    dest.mkdir(exist_ok=True)
    dirs = []
    for root, subdirs, files in os.walk(source, followlinks=False):
        rel = os.path.relpath(root, source)
        out_root = dest if rel == "." else dest / rel
        for name in subdirs + files:
            src = os.path.join(root, name)
            dst = os.path.join(out_root, name)
            st = os.lstat(src)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(dst, 0o700)
                own(dst, st)
                dirs.append((dst, st))
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
                own(dst, st)
                with contextlib.suppress(OSError, NotImplementedError):
                    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in inodes:
                    os.link(inodes[key], dst)
                    continue
                try:
                    shutil.copyfile(src, dst, follow_symlinks=False)
                except PermissionError:
                    os.chmod(src, stat.S_IMODE(st.st_mode) | 0o600)
                    try:
                        shutil.copyfile(src, dst, follow_symlinks=False)
                    finally:
                        os.chmod(src, stat.S_IMODE(st.st_mode))
                own(dst, st)
                os.chmod(dst, stat.S_IMODE(st.st_mode))
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                if st.st_nlink > 1:
                    inodes[key] = dst
            else:
                continue
        # directories whose subdirs os.walk cannot enter (0000) are fixed by layers already
    for dst, st in reversed(dirs):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    with contextlib.suppress(OSError):
        st = os.stat(source)
        os.chmod(dest, stat.S_IMODE(st.st_mode))
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
