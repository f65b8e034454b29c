"""Which ids the container's user namespace maps, as rootless Podman does it.

Where ``/etc/subuid`` and ``/etc/subgid`` grant the caller a range of subordinate ids and
``newuidmap``/``newgidmap`` (Debian package ``uidmap``) are installed, the namespace maps a full range:
the container user (root by default) is the caller, and the other container ids ``0..count`` are the
caller's subordinate ids in order. Package managers then work as on a workstation: apt switches to its
``_apt`` sandbox user, ``chown``/``chgrp`` to system users and groups really happen.

Otherwise (no range, no helpers, or the helpers refuse) the map has one id: the container user is the
caller, and nothing else exists. Then:

- the runner's seccomp filter makes ``chown`` to an unmapped id succeed without changing anything;
- :func:`apt_sandbox` writes a container-private apt setting that keeps apt's downloads as root, since
  apt cannot switch to ``_apt``; the file is removed again when a later run maps a full range.

Files that a full-range run gives to subordinate ids belong to those ids on the host too: the caller
cannot delete them directly. :func:`remove_tree` deletes a tree inside a namespace with the same map,
and :func:`run_mapped` runs other work there (``hpcbox clone`` and ``export`` read those files and keep
their owners).
"""

from __future__ import annotations

import os

from hpcbox_oci_bundle.contract import ANNOTATION_RUNC_IDMAP

TYPE_CHECKING = False  # typing (and subprocess, imported where used) cost ms of every `hpcbox run`
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Sequence, Tuple

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"
ANNOTATION_IDMAP = ANNOTATION_RUNC_IDMAP
IDMAP_MODES = ("auto", "single")
CLONE_NEWUSER = 0x10000000

APT_CONF_DIR = "etc/apt/apt.conf.d"
APT_SANDBOX_FILE = "00hpcbox-sandbox-user"
APT_SANDBOX_TEXT = (
    "// Written by hpcbox: this container ran with a single mapped user id (no subordinate ids in\n"
    "// /etc/subuid and /etc/subgid, or no newuidmap/newgidmap), so apt cannot switch to its sandbox\n"
    "// user _apt and downloads as the container's root instead. hpcbox removes this file when the\n"
    "// container runs with a full range of ids.\n"
    'APT::Sandbox::User "root";\n'
)


def subordinate_range(path: str, uid: int, name: Optional[str]) -> Optional[Tuple[int, int]]:
    """(first, count) of the first range ``path`` grants to ``name`` or ``uid``; None when none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] not in (name, str(uid)):
            continue
        if fields[1].isdigit() and fields[2].isdigit() and int(fields[2]) > 0:
            return int(fields[1]), int(fields[2])
    return None


def map_args(inside: int, caller: int, sub: Tuple[int, int]) -> Optional[List[int]]:
    """newuidmap/newgidmap triples: container id ``inside`` is the caller, the container ids around it
    are the subordinate range in order (0..inside-1, then inside+1..count); None when the range is too
    small to put ``inside`` in it."""
    first, count = sub
    if inside > count:
        return None
    triples = [inside, caller, 1]
    if inside > 0:
        triples += [0, first, inside]
    if count > inside:
        triples += [inside + 1, first + inside, count - inside]
    return triples


def _helper(name: str) -> Optional[str]:
    for directory in (*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin", "/bin"):
        path = os.path.join(directory or ".", name)
        if os.access(path, os.X_OK):
            return path
    return None


def _user_name(uid: int) -> Optional[str]:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


class FullMap:
    """What ``newuidmap``/``newgidmap`` will be given for one container, or why not (``reason``)."""

    def __init__(self, uid_args: Optional[List[int]], gid_args: Optional[List[int]], reason: str,
                 helpers: Tuple[Optional[str], Optional[str]]):
        self.uid_args, self.gid_args, self.reason, self.helpers = uid_args, gid_args, reason, helpers

    @property
    def possible(self) -> bool:
        return self.uid_args is not None and self.gid_args is not None and all(self.helpers)


def plan(inside_uid: int, inside_gid: int, *, subuid: str = SUBUID, subgid: str = SUBGID) -> FullMap:
    """The full map for a container process running as ``inside_uid:inside_gid``, if this host grants one.

    The engine asks for it only when the container runs as root (``idmap=auto``): root installs
    packages and gives files to other users; a process that runs as someone else (``--as-me``, an
    image's USER) cannot change owners anyway, and starts faster without the two helper programs."""
    uid, gid = os.geteuid(), os.getegid()
    helpers = (_helper("newuidmap"), _helper("newgidmap"))
    if not all(helpers):
        return FullMap(None, None, "newuidmap/newgidmap are not installed (Debian package uidmap)", helpers)
    name = _user_name(uid)
    subu = subordinate_range(subuid, uid, name)
    subg = subordinate_range(subgid, uid, name)
    if subu is None or subg is None:
        return FullMap(None, None, f"no range for {name or uid} in {subuid if subu is None else subgid}",
                       helpers)
    uid_args, gid_args = map_args(inside_uid, uid, subu), map_args(inside_gid, gid, subg)
    if uid_args is None or gid_args is None:
        return FullMap(None, None, "the subordinate range is smaller than the container's user id", helpers)
    return FullMap(uid_args, gid_args, f"{subu[1]} subordinate uids, {subg[1]} gids", helpers)


def runner_options(full: FullMap) -> List[str]:
    """The runner's ``--newuidmap HELPER LIST --newgidmap HELPER LIST``: it runs both helpers on
    itself once its user namespace exists (at the same time, with no round trip through the caller),
    and maps one id where either fails."""
    return ["--newuidmap", str(full.helpers[0]), ",".join(str(n) for n in full.uid_args or ()),
            "--newgidmap", str(full.helpers[1]), ",".join(str(n) for n in full.gid_args or ())]


def apply_full(pid: int, full: FullMap) -> Optional[str]:
    """Write the full map of process ``pid`` (a fresh user namespace); None, or why it failed.
    newuidmap and newgidmap run at the same time (each costs an exec of a setuid program)."""
    import subprocess

    helpers = []
    for helper, triples in ((full.helpers[0], full.uid_args), (full.helpers[1], full.gid_args)):
        argv = [str(helper), str(pid), *(str(n) for n in triples or ())]
        helpers.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT))
    error = None
    for process in helpers:
        output = process.communicate()[0]
        if process.returncode != 0 and error is None:
            text = " ".join(output.decode(errors="replace").split()) or f"status {process.returncode}"
            error = f"{os.path.basename(str(process.args[0]))} failed: {text}"  # type: ignore[index]  # a list
    return error


def apply_single(pid: int, inside_uid: int, inside_gid: int) -> None:
    """The single-id map, written by the namespace's owner from outside (as the runner would itself)."""
    base = f"/proc/{pid}"
    try:
        with open(f"{base}/uid_map", encoding="ascii") as handle:
            uid_done = bool(handle.read().strip())
    except OSError:
        uid_done = False
    if not uid_done:
        _write(f"{base}/uid_map", f"{inside_uid} {os.geteuid()} 1\n")
    _write(f"{base}/setgroups", "deny")
    _write(f"{base}/gid_map", f"{inside_gid} {os.getegid()} 1\n")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# -- apt's sandbox user ------------------------------------------------------------------------------

def apt_sandbox(roots: Sequence[str], write_to: str, single: bool) -> None:
    """Write (``single``) or remove (full map) the apt setting described in the module doc.

    ``roots``: where the container's files are read (the rootfs, or an overlay's upper then lower
    directories); ``write_to``: the rootfs or the overlay's upper directory. Only containers that have
    ``/etc/apt/apt.conf.d`` get the file; a file of the same name that hpcbox did not write is left
    alone."""
    if not _has_apt(roots):
        return
    directory = os.path.join(write_to, APT_CONF_DIR)
    path = os.path.join(directory, APT_SANDBOX_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            current: Optional[str] = handle.read()
    except OSError:
        current = None
    if single and current is None:
        if os.path.islink(os.path.join(write_to, "etc")) or os.path.islink(os.path.join(write_to, "etc/apt")):
            return  # never write through a link an image planted
        os.makedirs(directory, exist_ok=True)
        temp = f"{path}.tmp-{os.getpid()}"
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(APT_SANDBOX_TEXT)
        os.replace(temp, path)
    elif not single and current == APT_SANDBOX_TEXT:
        os.unlink(path)


def apt_sandbox_option(roots: Sequence[str], write_to: str) -> List[str]:
    """The runner's ``--single-map-file ROOT PATH TEXT`` that writes apt's setting of
    :func:`apt_sandbox` (``single=True``) if the full map fails; none when the container has no apt."""
    if not _has_apt(roots):
        return []
    return ["--single-map-file", write_to, f"{APT_CONF_DIR}/{APT_SANDBOX_FILE}", APT_SANDBOX_TEXT]


def _has_apt(roots: Sequence[str]) -> bool:
    return any(os.path.isdir(os.path.join(root, APT_CONF_DIR))
               and not os.path.islink(os.path.join(root, "etc")) for root in roots)


# -- removing what subordinate ids own ---------------------------------------------------------------

def remove_tree(path: str) -> Optional[str]:
    """Delete ``path`` from inside a user namespace that maps the caller's subordinate ids (the caller
    is its root), so files that containers gave to those ids go too. None, or why it could not."""
    try:
        return run_mapped(lambda: _remove_as_root(path), f"removing {path}")
    except OSError as exc:
        return str(exc)


def run_mapped(action: Callable[[], None], what: str) -> Optional[str]:
    """Run ``action`` in a forked child inside a user namespace with the full map of :func:`plan`
    for root (the caller is its root, container id N is the N-th subordinate id): there it reads,
    writes and chowns the files that containers gave to those ids, and ``stat`` shows their owners
    as the container's ids. None when it ran through; why not when the namespace could not be made
    (``action`` did not run); OSError naming ``what`` when ``action`` failed."""
    full = plan(0, 0)
    if not full.possible:
        return full.reason
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    why_r, why_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            for fd in (ready_r, go_w, why_r):
                os.close(fd)
            _unshare_user()
            os.write(ready_w, b"R")
            if os.read(go_r, 1) == b"G":
                action()
                code = 0
        except BaseException as exc:  # reported to the parent, which decides
            try:
                os.write(why_w, str(exc).encode(errors="replace")[:4000])
            except OSError:
                pass
        finally:
            os._exit(code)
    for fd in (ready_w, go_r, why_w):
        os.close(fd)
    try:
        error: Optional[str] = "the helper could not create a user namespace"
        if os.read(ready_r, 1) == b"R":
            error = apply_full(child, full)
            if error is None:
                os.write(go_w, b"G")
    finally:
        os.close(ready_r)
        os.close(go_w)
        try:
            why = _read_all(why_r)
        finally:
            os.close(why_r)
    _, status = os.waitpid(child, 0)
    if error is None and os.waitstatus_to_exitcode(status) != 0:
        raise OSError(f"{what} in the user namespace of the subordinate ids failed: {why or 'no reason'}")
    return error


def _read_all(fd: int) -> str:
    chunks: List[bytes] = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks).decode(errors="replace")
        chunks.append(chunk)


def _unshare_user() -> None:
    unshare = getattr(os, "unshare", None)
    if unshare is not None:  # Python 3.12+
        unshare(CLONE_NEWUSER)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _remove_as_root(path: str) -> None:
    import shutil

    def onerror(func: Callable[[str], object], failed: str,
                exc_info: Tuple[type, BaseException, object]) -> None:
        if isinstance(exc_info[1], FileNotFoundError):
            return
        os.chmod(os.path.dirname(failed), 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
            shutil.rmtree(failed, onerror=onerror)
        else:
            func(failed)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=onerror)
