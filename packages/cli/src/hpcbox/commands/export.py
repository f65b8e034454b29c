"""hpcbox export [-o FILE] [--clone] CONTAINER: a tar of the container's rootfs (FILE '-' or none: stdout);
with --clone, ``container.json`` and ``rootfs/`` for ``import --clone`` (udocker's clone format).

Owners: the caller's files are root's in the tar (the container's root). Where the caller has
subordinate ids, the tar is written in a user namespace that maps them, so the files a runc container
with the full map gave to its users (apt's ``_apt``, a package's group) are read and keep their
owners, named from the container's own /etc/passwd and /etc/group."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tarfile
import tempfile
from argparse import Namespace
from pathlib import Path
from typing import BinaryIO, Dict, Optional, Tuple, Union

from hpcbox import settings
from hpcbox.errors import UsageError

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    StrPath = Union[str, "os.PathLike[str]"]
    from hpcbox.containers import Container


def _filter(info: tarfile.TarInfo, names: Optional[Tuple[Dict[int, str], Dict[int, str]]] = None,
            ) -> Optional[tarfile.TarInfo]:
    """*names*: (users, groups) of the container by id, to keep the owners; None gives all to root."""
    if names is None:
        info.uid = info.gid = 0  # unprivileged extraction kept no owners: give them to root, as images do
        info.uname = info.gname = "root"
    else:
        info.uname, info.gname = names[0].get(info.uid, ""), names[1].get(info.gid, "")
    if info.name == ".":
        return None
    if info.name.startswith("./"):
        info.name = info.name[2:]
    return info


def _names(rootfs: StrPath, relative: str) -> Dict[int, str]:
    """id -> name of the container's /etc/passwd or /etc/group (read in the rootfs, no link followed
    out of it: a name that cannot be read is left empty, and the id stays)."""
    names: Dict[int, str] = {}
    path = os.path.join(rootfs, relative)
    if os.path.islink(path) or os.path.islink(os.path.dirname(path)):
        return names
    with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split(":")
            if len(fields) > 3 and fields[2].isdigit():
                names.setdefault(int(fields[2]), fields[0])
    return names


def write_rootfs_tar(rootfs: StrPath, handle: BinaryIO, prefix: str = "", meta: bytes = b"",
                     keep_owners: bool = False) -> None:
    """The rootfs as a tar; *prefix* before each name, and *meta* as ``container.json`` first (clones);
    the files' owners with *keep_owners* (else root's)."""
    names = (_names(rootfs, "etc/passwd"), _names(rootfs, "etc/group")) if keep_owners else None
    with tarfile.open(fileobj=handle, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        if meta:
            import io

            info = tarfile.TarInfo("container.json")
            info.size, info.mode = len(meta), 0o644
            tar.addfile(info, io.BytesIO(meta))
        if prefix:
            top = _filter(tar.gettarinfo(str(rootfs), arcname=prefix.rstrip("/")), names)
            if top is not None:
                tar.addfile(top)
        for root, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs + files):
                path = os.path.join(root, name)
                rel = prefix + os.path.relpath(path, rootfs)
                info = tar.gettarinfo(path, arcname=rel)
                if info is None:  # sockets: not archivable
                    continue
                filtered = _filter(info, names)
                if filtered is None:
                    continue
                info = filtered
                if info.isreg():
                    try:
                        with open(path, "rb") as data:
                            tar.addfile(info, data)
                    except PermissionError:
                        mode = stat.S_IMODE(os.lstat(path).st_mode)
                        os.chmod(path, mode | 0o400)
                        try:
                            with open(path, "rb") as data:
                                tar.addfile(info, data)
                        finally:
                            os.chmod(path, mode)
                else:
                    tar.addfile(info)


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore

    operands = list(args.container)
    if len(operands) == 2 and operands[0] == "-" and args.output in (None, "-"):
        operands.pop(0)  # udocker's 'export - CONTAINER'
    if len(operands) != 1:
        raise UsageError(f"export takes one container, got {' '.join(args.container)}",
                         "use 'hpcbox export -o FILE CONTAINER' ('-o -' or none for stdout)")
    args.container, args.output = operands[0], args.output or "-"
    store = settings.store(args)
    c = ContainerStore(store).get(args.container)
    if getattr(args, "clone", False):
        args.clone = _clone_meta(c)
    if c.storage == "overlay":  # the merged view: a temporary copy of lower + upper
        from hpcbox.containers import remove_tree
        from hpcbox.containers.overlay import merged_copy

        store.tmp_dir.mkdir(parents=True, exist_ok=True)
        view = tempfile.mkdtemp(prefix=".hpcbox-export-", dir=store.tmp_dir)
        try:
            os.rmdir(view)
            merged_copy(c.lower, c.upper, Path(view))
            return _export(args, view)
        finally:
            remove_tree(view)
    return _export(args, c.rootfs)


def _export(args: Namespace, rootfs: StrPath) -> int:
    if args.output == "-":
        if sys.stdout.isatty():
            raise UsageError("refusing to write a tar to a terminal", "redirect stdout or use -o FILE")
        sys.stdout.flush()
        with os.fdopen(os.dup(1), "wb") as out:
            _write(args, rootfs, out)
        return 0
    target = os.path.abspath(args.output)
    fd, tmp = tempfile.mkstemp(prefix=".hpcbox-export-", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as out:
            _write(args, rootfs, out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return 0


def _write(args: Namespace, rootfs: StrPath, out: BinaryIO) -> None:
    from hpcbox.containers import ContainerError, mapped_runner

    def write(keep_owners: bool) -> None:
        if getattr(args, "clone", None):
            write_rootfs_tar(rootfs, out, prefix="rootfs/", meta=args.clone, keep_owners=keep_owners)
        else:
            write_rootfs_tar(rootfs, out, keep_owners=keep_owners)
        out.flush()  # the mapped writer is a forked child: nothing may stay in its buffer

    run = mapped_runner()
    if run is not None:
        out.flush()
        try:
            if run(lambda: write(True), f"writing the tar of {rootfs}") is None:
                return
        except OSError as exc:
            raise ContainerError(str(exc), "check the ranges of /etc/subuid and /etc/subgid, "
                                 "or free space") from None
    write(False)


def _clone_meta(c: Container) -> bytes:
    """What 'import --clone' restores: the image, its config, the execution mode and settings."""
    import json

    meta = {k: v for k, v in c.as_dict().items() if k in ("image", "image_config", "execmode", "settings")}
    return json.dumps({"hpcbox_clone": 1, **meta}, indent=1).encode()
