"""Reference model of guest path translation, shared by the ptrace and preload engines' tests.

The C core in csrc/guestpath/ must agree with this module on every input; the semantics are
written down in csrc/guestpath/guestpath.h. This model is written for clarity, not speed: the
guest path is a list of pending names, the resolved path a list of names, and every step looks
at the real tree with os.lstat/os.readlink.

Dependency-free (standard library only) and importable by file path, so that packages can load
it from the repository without installing anything.

    to_host(root, guest_path, cwd="/", bindings=(), follow=False, parent=False, no_mount=False)
        -> str   (raises OSError)
    canonical(root, guest_path, cwd="/", bindings=(), follow=False, parent=False, no_mount=False)
        -> str

``parent`` is the rule of the calls that create, remove or rename the final name (mkdir, rmdir,
unlink, rename, link's and symlink's new name, mknod, O_CREAT|O_EXCL, bind): the kernel never
follows nor normalises that name, so only the directory part is resolved and the final name is
kept as written, trailing "/" included; the kernel then decides what "d/.", "f/" or "link/" mean.
``no_mount`` (True for rename, "rmdir", "unlink"): a mount point (a binding's own guest path; "/"
for rmdir) cannot be removed or moved: EBUSY (rmdir of a non-directory ENOTDIR, unlink of a
directory EISDIR, as the kernel checks the type first).
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
            # binding the same guest prefix again replaces it, and the new one is on top
            self.bindings = [b for b in self.bindings if b[0] != names]
            self.bindings.append((names, real))

    # --- guest -> host -------------------------------------------------------------------

    def _binding_for(self, names: List[str]) -> Optional[Tuple[List[str], str]]:
        """Mount order: the covering binding added last (it hides or lies on top of the others)."""
        for gnames, host in reversed(self.bindings):
            if names[: len(gnames)] == gnames:
                return gnames, host
        return None

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

    @staticmethod
    def _mount_point(host: str, no_mount) -> OSError:
        """The error of removing or moving a mount point (no_mount: "rmdir", "unlink" or True)."""
        code = errno.EBUSY
        if no_mount in ("rmdir", "unlink") and os.path.lexists(host):
            is_dir = stat.S_ISDIR(os.lstat(host).st_mode)
            if no_mount == "rmdir" and not is_dir:
                code = errno.ENOTDIR
            elif no_mount == "unlink" and is_dir:
                code = errno.EISDIR
        return OSError(code, os.strerror(code), host)

    def _parent(self, guest_path: str, cwd: str, no_mount, mapped: bool) -> str:
        if guest_path == "":
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), guest_path)
        stripped = guest_path.rstrip("/")
        slash = "/" if stripped != guest_path else ""
        if not stripped:  # "/": root + "/.", refused as Linux refuses "/" (but by rmdir: EINVAL)
            if no_mount == "rmdir":
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), guest_path)
            stripped, slash = "/.", ""
        last = stripped.rpartition("/")[2]
        directory = stripped[: len(stripped) - len(last)] or "."
        names, missing = self.resolve(directory, cwd, follow=True)
        if missing and not self._leads_to_binding(names):
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), guest_path)
        if last in (".", ".."):  # appended to the directory's path, never resolved
            base = self.map_names(names) if mapped else _join("/", names)
            return base.rstrip("/") + "/" + last + slash
        names = [*names, last]
        if no_mount and any(g == names for g, _ in self.bindings):
            raise self._mount_point(self.map_names(names), no_mount)
        return (self.map_names(names) if mapped else _join("/", names)) + slash

    def canonical(self, guest_path: str, cwd: str = "/", follow: bool = False, *, parent: bool = False,
                  no_mount=False) -> str:
        if parent:
            return self._parent(guest_path, cwd, no_mount, mapped=False)
        names, slash = self.resolve(guest_path, cwd, follow)
        out = _join("/", names)
        return out + "/" if slash and out != "/" else out

    def to_host(self, guest_path: str, cwd: str = "/", follow: bool = False, *, parent: bool = False,
                no_mount=False) -> str:
        if parent:
            return self._parent(guest_path, cwd, no_mount, mapped=True)
        names, slash = self.resolve(guest_path, cwd, follow)
        out = self.map_names(names)
        return out + "/" if slash and out != "/" else out

    # --- host -> guest -------------------------------------------------------------------

    def to_guest(self, host_path: str) -> Tuple[str, bool]:
        """The guest path of a host path, and False when it lies outside root and bindings
        (the normalised host path comes back then)."""
        h = _names(normalise(host_path))
        # (matched host names, guest names, is a binding): the longest match wins, a binding
        # wins a tie with the root, the binding added last a tie with an earlier one.
        best: Optional[Tuple[int, List[str], bool]] = None
        root = _names(self.root)
        if h[: len(root)] == root:
            best = (len(root), [], False)
        for gnames, host in self.bindings:
            hn = _names(host)
            if h[: len(hn)] != hn:
                continue
            if best is None or len(hn) >= best[0]:
                best = (len(hn), gnames, True)
        if best is None:
            return _join("/", h), False
        return _join("/", best[1] + h[best[0] :]), True


def to_host(root: str, guest_path: str, cwd: str = "/", bindings: Iterable[Binding] = (),
            follow: bool = False, *, parent: bool = False, no_mount=False) -> str:
    return Model(root, bindings).to_host(guest_path, cwd, follow, parent=parent, no_mount=no_mount)


def canonical(root: str, guest_path: str, cwd: str = "/", bindings: Iterable[Binding] = (),
              follow: bool = False, *, parent: bool = False, no_mount=False) -> str:
    return Model(root, bindings).canonical(guest_path, cwd, follow, parent=parent, no_mount=no_mount)


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


# -- the kernel as the oracle: the same call in a real chroot (a user namespace of our own) ----------

# What each call does with its path arguments, as the engines translate them: "follow" (stat
# semantics), "nofollow" (lstat), "parent" (the final name is the object: created), "rmdir",
# "unlink", "rename" (parent, and a mount point cannot be removed or moved).
CALLS = {
    "stat": ("follow",),
    "lstat": ("nofollow",),
    "open_dir": ("follow",),
    "open_creat": ("create",),
    "creat_excl": ("parent",),
    "mkdir": ("parent",),
    "mkfifo": ("parent",),
    "symlink": ("parent",),
    "link": ("nofollow", "parent"),
    "rmdir": ("rmdir",),
    "unlink": ("unlink",),
    "rename": ("rename", "rename"),
}


def translate_kwargs(how: str, path: str = "") -> dict:
    """The keyword arguments of the engines' translate() for one path argument of a call. "create"
    (open with O_CREAT): followed, but with a trailing "/" only the directory part is resolved and
    the name is kept as written, so that the kernel gives Linux's EISDIR."""
    if how == "create":
        how = "parent" if path.endswith("/") else "follow"
    removes = {"rename": True, "rmdir": "rmdir", "unlink": "unlink"}.get(how, False)
    return {"follow": how == "follow", "parent": how not in ("follow", "nofollow"), "no_mount": removes}


def link_old_first(call: str, hosts: Sequence[str], err: int) -> int:
    """What the engines report when a link's new name cannot resolve (err): Linux looks old up
    first, so a missing old (hosts[0], translated) gives its own error."""
    if call != "link" or len(hosts) != 1:
        return err
    try:
        os.lstat(hosts[0])
    except OSError as e:
        return e.errno
    return err


def perform(call: str, paths: Sequence[str]) -> Tuple[str, object]:
    """Run one call on paths as they are; ("ok", what it found) or ("errno", errno)."""
    try:
        p = paths[0]
        if call in ("stat", "lstat"):
            st = os.stat(p) if call == "stat" else os.lstat(p)
            return "ok", stat.S_IFMT(st.st_mode)
        if call in ("open_dir", "open_creat", "creat_excl"):
            flags = {"open_dir": os.O_RDONLY | os.O_DIRECTORY, "open_creat": os.O_WRONLY | os.O_CREAT,
                     "creat_excl": os.O_WRONLY | os.O_CREAT | os.O_EXCL}[call]
            fd = os.open(p, flags | os.O_CLOEXEC, 0o644)
            mode = os.fstat(fd).st_mode
            os.close(fd)
            return "ok", stat.S_IFMT(mode)
        if call == "mkdir":
            os.mkdir(p)
        elif call == "mkfifo":
            os.mkfifo(p)
        elif call == "symlink":
            os.symlink("target", p)
        elif call == "link":
            os.link(p, paths[1], follow_symlinks=False)
        elif call == "rmdir":
            os.rmdir(p)
        elif call == "unlink":
            os.unlink(p)
        elif call == "rename":
            os.rename(p, paths[1])
        else:
            raise ValueError(f"unknown call {call!r}")
        return "ok", None
    except OSError as e:
        return "errno", e.errno


def snapshot(base: str) -> List[Tuple[str, str, str]]:
    """What a tree holds: (relative path, kind, link target), sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            st = os.lstat(full)
            kind = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "link",
                    stat.S_IFIFO: "fifo"}.get(stat.S_IFMT(st.st_mode), "other")
            out.append((os.path.relpath(full, base), kind, os.readlink(full) if kind == "link" else ""))
    return sorted(out)


def in_chroot(root: str, cwd: str, call: str, paths: Sequence[str]) -> Tuple[str, object]:
    """perform(call, paths) in a child chrooted at root with the guest cwd, in a user namespace it
    creates (uid and gid mapped to themselves): what Linux does for a program whose "/" is root.
    Raises OSError when this host gives no user namespace to an unprivileged user."""
    import ctypes
    import json

    read_end, write_end = os.pipe()
    uid, gid = os.getuid(), os.getgid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(read_end)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                               ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(text)
            os.chroot(root)
            os.chdir(cwd)
            result = list(perform(call, paths))
        except OSError as e:
            result = ["setup", f"{e.strerror} ({e.errno})"]
            code = 1
        os.write(write_end, json.dumps(result).encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as handle:
        data = handle.read()
    os.waitpid(pid, 0)
    kind, value = json.loads(data.decode())
    if kind == "setup":
        raise OSError(errno.EPERM, f"no chroot in a user namespace here: {value}")
    return kind, value
