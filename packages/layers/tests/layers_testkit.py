"""Test helpers: build layer tars from entry lists, a pure-Python model of the OCI layer rules, and a
snapshot of a real directory tree in the same shape as the model, so the two can be compared."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import Dict, List, Tuple

Path = Tuple[str, ...]


# -- entries and tars --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    kind: str  # file, dir, symlink, hardlink, whiteout, opaque, chr, fifo
    name: str  # the name written in the tar, verbatim
    data: bytes = b""
    mode: int = 0o644
    target: str = ""  # link target, verbatim
    mtime: int = 1_600_000_000


def file(name, data=b"", mode=0o644, mtime=1_600_000_000):
    return Entry("file", name, data=data, mode=mode, mtime=mtime)


def dir_(name, mode=0o755, mtime=1_600_000_000):
    return Entry("dir", name, mode=mode, mtime=mtime)


def symlink(name, target, mtime=1_600_000_000):
    return Entry("symlink", name, target=target, mtime=mtime)


def hardlink(name, target):
    return Entry("hardlink", name, target=target)


def whiteout(name):
    """`name` is the path to hide: the tar gets <dir>/.wh.<base>."""
    head, _, base = name.rpartition("/")
    return Entry("whiteout", f"{head}/.wh.{base}" if head else f".wh.{base}")


def opaque(dirname):
    return Entry("opaque", f"{dirname.rstrip('/')}/.wh..wh..opq" if dirname.strip("./") else ".wh..wh..opq")


def tar_bytes(entries: List[Entry], fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mtime = e.mtime
            info.mode = e.mode
            data = None
            if e.kind in ("file", "whiteout", "opaque"):
                info.type = tarfile.REGTYPE
                data = e.data
                info.size = len(data)
            elif e.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.target
            elif e.kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = e.target
            elif e.kind == "chr":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 3
            elif e.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            else:
                raise ValueError(e.kind)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


# -- the model ---------------------------------------------------------------------------------------


class ModelUnsafe(Exception):
    pass


class ModelCorrupt(Exception):
    pass


class Node:
    """One inode of the model; hardlinked paths share the Node object."""

    def __init__(self, kind, mode=None, data=b"", target="", mtime=None):
        self.kind, self.mode, self.data, self.target, self.mtime = kind, mode, data, target, mtime


def norm(name: str) -> Path:
    return tuple(c for c in name.split("/") if c not in ("", "."))


def fixed_mode(mode: int, is_dir: bool) -> int:
    """The documented fixes: no setuid/setgid; no sticky on files; u+rwx on dirs, u+rw on files."""
    return ((mode & 0o1777) | 0o700) if is_dir else ((mode & 0o777) | 0o600)


class Model:
    """The OCI rules on a dict path -> Node, written independently of the library's code."""

    def __init__(self):
        self.tree: Dict[Path, Node] = {}
        self.skipped: set = set()

    def _under(self, path: Path):
        n = len(path)
        return [k for k in self.tree if len(k) > n and k[:n] == path]

    def _delete(self, path: Path):
        for k in self._under(path):
            del self.tree[k]
        self.tree.pop(path, None)
        self.skipped.discard(path)

    def _walk(self, d: Path, create: bool) -> bool:
        """True when directory `d` exists (made when `create`); a symlink on the way is unsafe."""
        for i in range(1, len(d) + 1):
            p = d[:i]
            node = self.tree.get(p)
            if node is not None and node.kind == "symlink":
                raise ModelUnsafe(p)
            if node is not None and node.kind == "dir":
                continue
            if not create:
                return False
            self._delete(p)
            self.tree[p] = Node("dir", mode=0o755)
        return True

    def apply(self, entries: List[Entry]):
        seen = set()
        for e in entries:
            path = norm(e.name)
            base = path[-1]
            parent = path[:-1]
            if base == ".wh..wh..opq":
                if self._walk(parent, create=False):
                    for k in self._under(parent):
                        if k not in seen and k in self.tree:
                            self._delete(k)
                continue
            if base.startswith(".wh."):
                victim = (*parent, base[4:])
                if victim in seen:
                    continue
                if self._walk(parent, create=False):
                    self._delete(victim)
                continue
            self._walk(parent, create=True)
            self.skipped.discard(path)
            seen.update(path[:i] for i in range(1, len(path) + 1))
            if e.kind == "file":
                self._delete(path)
                self.tree[path] = Node("file", fixed_mode(e.mode, False), e.data, mtime=e.mtime)
            elif e.kind == "dir":
                old = self.tree.get(path)
                if old is None or old.kind != "dir":
                    self._delete(path)
                    old = self.tree[path] = Node("dir")
                old.mode, old.mtime = fixed_mode(e.mode, True), e.mtime
            elif e.kind == "symlink":
                self._delete(path)
                self.tree[path] = Node("symlink", target=e.target, mtime=e.mtime)
            elif e.kind == "hardlink":
                target = norm(e.target)
                if target == path:
                    continue
                if target in self.skipped:
                    self._delete(path)
                    self.skipped.add(path)
                    continue
                if not self._walk(target[:-1], create=False):
                    raise ModelCorrupt(target)
                node = self.tree.get(target)
                if node is None or node.kind == "dir":
                    raise ModelCorrupt(target)
                if path in self.tree and target[: len(path)] == path:
                    raise ModelCorrupt(target)
                self._delete(path)
                self.tree[path] = node
            elif e.kind in ("chr", "fifo"):
                self._delete(path)
                self.skipped.add(path)
            else:
                raise ValueError(e.kind)

    def snapshot(self):
        """The model in the shape of `snapshot_tree`: path -> (kind, mode, content, mtime, inode key)."""
        ids: Dict[int, int] = {}
        out = {}
        for path, node in self.tree.items():
            key = ids.setdefault(id(node), len(ids))
            if node.kind == "file":
                out["/".join(path)] = ("file", node.mode, node.data, node.mtime, key)
            elif node.kind == "dir":
                out["/".join(path)] = ("dir", node.mode, None, node.mtime, None)
            else:
                out["/".join(path)] = ("symlink", None, node.target, node.mtime, key)
        return out


# -- real trees ----------------------------------------------------------------------------------------


def snapshot_tree(root: str):
    """A real tree as path -> (kind, mode, content, mtime in s, inode number)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            mtime = st.st_mtime_ns // 10**9
            if stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None, mtime, None)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", None, os.readlink(full), mtime, st.st_ino)
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    data = f.read()
                out[rel] = ("file", stat.S_IMODE(st.st_mode), data, mtime, st.st_ino)
            else:
                out[rel] = ("other", stat.S_IMODE(st.st_mode), None, mtime, st.st_ino)
    return out


def canonical(snap):
    """Renumber inode keys by first appearance in path order, so equal link structure compares equal."""
    ids: Dict[object, int] = {}
    out = {}
    for path in sorted(snap):
        kind, mode, content, mtime, key = snap[path]
        if key is not None:
            key = ids.setdefault(key, len(ids))
        out[path] = (kind, mode, content, mtime, key)
    return out


def sentinel_snapshot(root: str):
    """Everything about a tree that an escape could change: names, types, modes, contents, link
    targets, mtimes and link counts (a hardlink made to a file outside raises its link count)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            content = None
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    content = f.read()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(full)
            out[os.path.relpath(full, root)] = (st.st_mode, st.st_nlink, st.st_mtime_ns, st.st_size, content)
    return out
