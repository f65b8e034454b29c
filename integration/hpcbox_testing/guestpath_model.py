"""Reference model of guest path translation, shared by the ptrace and preload engines' tests.

The C core in csrc/guestpath/ must agree with this module on every input; the semantics are
written down in csrc/guestpath/guestpath.h. This model is written for clarity, not speed: the
guest path is a list of pending names, the resolved path a list of names, and every step looks
at the real tree with os.lstat/os.readlink.

Dependency-free (standard library only) and importable by file path, so that packages can load
it from the repository without installing anything.

    to_host(root, guest_path, cwd="/", bindings=(), follow=False) -> str   (raises OSError)
    canonical(root, guest_path, cwd="/", bindings=(), follow=False) -> str
    to_guest(root, host_path, bindings=()) -> (str, bool inside)
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Iterable, List, Optional, Sequence, Tuple

MAX_LINKS = 40

Binding = Tuple[str, str]  # (guest prefix, host path)


def _names(path: str) -> List[str]:
    return [n for n in path.split("/") if n]


def normalise(path: str) -> str:
    """Lexical normalisation of an absolute path: no "", ".", "//"; ".." clamped at "/"."""
    if not path.startswith("/"):
        raise ValueError(f"not an absolute path: {path!r}")
    out: List[str] = []
    for name in _names(path):
        if name == ".":
            continue
        if name == "..":
            if out:
                out.pop()
            continue
        out.append(name)
    return "/" + "/".join(out)


def _join(prefix: str, names: Sequence[str]) -> str:
    base = "" if prefix == "/" else prefix
    if not names:
        return prefix if prefix else "/"
    return base + "/" + "/".join(names)


class Model:
    """A rootfs with bindings, as the C struct gp_context holds it."""

    def __init__(self, root: str, bindings: Iterable[Binding] = ()):
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise NotADirectoryError(errno.ENOTDIR, "root is not a directory", root)
        self.bindings: List[Tuple[List[str], str]] = []
        for guest, host in bindings:
            names = _names(normalise(guest))
            if not names:
                raise ValueError("a binding cannot be at /")
            os.stat(host)  # a missing host path raises FileNotFoundError, as realpath(3) fails
            real = os.path.realpath(host)
            for i, (gnames, _) in enumerate(self.bindings):
                if gnames == names:  # binding the same guest prefix again replaces it in place
                    self.bindings[i] = (names, real)
                    break
            else:
                self.bindings.append((names, real))

    # --- guest -> host -------------------------------------------------------------------

    def _binding_for(self, names: List[str]) -> Optional[Tuple[List[str], str]]:
        best = None
        for gnames, host in self.bindings:
            if names[: len(gnames)] == gnames and (best is None or len(gnames) > len(best[0])):
                best = (gnames, host)
        return best

    def map_names(self, names: List[str]) -> str:
        """Host path of the resolved guest path given as a list of names."""
        b = self._binding_for(names)
        if b is None:
            return _join(self.root, names)
        return _join(b[1], names[len(b[0]) :])

    def _leads_to_binding(self, names: List[str]) -> bool:
        return any(len(g) > len(names) and g[: len(names)] == names for g, _ in self.bindings)

    def resolve(self, guest_path: str, cwd: str = "/", follow: bool = False) -> Tuple[List[str], bool]:
        """Resolved guest names, and whether a missing final component was followed by "/"."""
        if guest_path == "":
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), guest_path)
        resolved: List[str] = [] if guest_path.startswith("/") else _names(normalise(cwd))
        # Each pending item is a name and whether a "/" came after it in its path.
        pending = self._split(guest_path)
        links = 0
        while pending:
            name, slash_after = pending.pop(0)
            last = not pending
            if name == ".":
                continue
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            resolved.append(name)
            host = self.map_names(resolved)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                if last:
                    return resolved, slash_after
                if self._leads_to_binding(resolved):
                    continue
                raise
            trailing_slash = last and slash_after
            if stat.S_ISLNK(st.st_mode) and (not last or trailing_slash or follow):
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), guest_path)
                target = os.readlink(host)
                resolved.pop()
                if target.startswith("/"):
                    resolved = []
                new = self._split(target)
                if new and trailing_slash:  # "link/" : the target's last name must be a directory
                    new[-1] = (new[-1][0], True)
                pending = new + pending
                continue
            if not stat.S_ISDIR(st.st_mode) and (not last or trailing_slash):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), guest_path)
        return resolved, False

    @staticmethod
    def _split(path: str) -> List[Tuple[str, bool]]:
        parts = path.split("/")
        out: List[Tuple[str, bool]] = []
        for i, name in enumerate(parts):
            if not name:
                continue
            has_slash = i + 1 < len(parts)  # a "/" follows this name somewhere
            out.append((name, has_slash))
        return out

    def canonical(self, guest_path: str, cwd: str = "/", follow: bool = False) -> str:
        names, slash = self.resolve(guest_path, cwd, follow)
        out = _join("/", names)
        return out + "/" if slash and out != "/" else out

    def to_host(self, guest_path: str, cwd: str = "/", follow: bool = False) -> str:
        names, slash = self.resolve(guest_path, cwd, follow)
        out = self.map_names(names)
        return out + "/" if slash and out != "/" else out

    # --- host -> guest -------------------------------------------------------------------

    def to_guest(self, host_path: str) -> Tuple[str, bool]:
        """The guest path of a host path, and False when it lies outside root and bindings
        (the normalised host path comes back then)."""
        h = _names(normalise(host_path))
        # (matched host names, guest names, is a binding): the longest match wins, a binding
        # wins a tie with the root, the first binding added wins a tie with a later one.
        best: Optional[Tuple[int, List[str], bool]] = None
        root = _names(self.root)
        if h[: len(root)] == root:
            best = (len(root), [], False)
        for gnames, host in self.bindings:
            hn = _names(host)
            if h[: len(hn)] != hn:
                continue
            if best is None or len(hn) > best[0] or (len(hn) == best[0] and not best[2]):
                best = (len(hn), gnames, True)
        if best is None:
            return _join("/", h), False
        return _join("/", best[1] + h[best[0] :]), True


def to_host(root: str, guest_path: str, cwd: str = "/", bindings: Iterable[Binding] = (),
            follow: bool = False) -> str:
    return Model(root, bindings).to_host(guest_path, cwd, follow)


def canonical(root: str, guest_path: str, cwd: str = "/", bindings: Iterable[Binding] = (),
              follow: bool = False) -> str:
    return Model(root, bindings).canonical(guest_path, cwd, follow)


def to_guest(root: str, host_path: str, bindings: Iterable[Binding] = ()) -> Tuple[str, bool]:
    return Model(root, bindings).to_guest(host_path)


# -- for the property tests of both engines: a generated tree on disk, and the cwds it allows --------

def build_tree(base, items) -> None:
    """Create *items* (``(path parts, "dir"|"file"|"link", link target)``) under *base*, parents
    first; an entry whose parent is a file or a link has no place and is skipped."""
    base = os.fspath(base)
    os.makedirs(base, exist_ok=True)
    for parts, kind, target in sorted(items, key=lambda item: len(item[0])):
        path = os.path.join(base, *parts)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.lexists(path):
                continue
            if kind == "dir":
                os.mkdir(path)
            elif kind == "file":
                with open(path, "w") as handle:
                    handle.write("x")
            else:
                os.symlink(target, path)
        except OSError:
            continue


def cwd_candidates(root: str, bindings: Iterable[Binding] = ()) -> List[str]:
    """Guest directories usable as a cwd: the real directories of the root and of the bindings whose
    guest path is canonical (a binding can shadow a rootfs directory, a link in it can hide one)."""
    root = os.fspath(root)
    bindings = list(bindings)
    found = {"/"}
    for base, prefix in [(root, ""), *[(os.fspath(h), g) for g, h in bindings]]:
        if prefix:
            found.add(prefix)
        for dirpath, dirnames, _ in os.walk(base):
            for d in dirnames:
                full = os.path.join(dirpath, d)
                if not os.path.islink(full):
                    found.add(prefix + "/" + os.path.relpath(full, base))
    out = []
    for cwd in sorted(found):
        try:
            if canonical(root, cwd, bindings=bindings, follow=True) == cwd and os.path.isdir(
                    to_host(root, cwd, bindings=bindings, follow=True)):
                out.append(cwd)
        except OSError:
            continue
    return out
