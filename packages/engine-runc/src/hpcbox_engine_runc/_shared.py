"""One user namespace for a group of containers on this node (the ranks of one MPI job).

Open MPI's shared-memory transport uses single-copy transfers (CMA, ``process_vm_readv``) only
between processes of one user namespace. Runners that start with the same group key therefore join
the user namespace the first of them created, instead of creating one each:

- the group is a directory ``<base>/hpcbox-<uid>/userns/<hash of the key>`` (``base`` is /dev/shm,
  node-local, else the temporary directory), private to the user (0700, checked);
- under an exclusive lock on it, a starting runner looks for a living member: a file named after
  the member runner's pid holding its start time and user-namespace inode. It opens that process's
  ``/proc/PID/ns/user`` (the open descriptor keeps the namespace alive whatever the member does
  next), checks start time and inode (a reused pid is not a member) and hands the descriptor to the
  runner (``--userns-fd``). Without one, the runner creates the namespace;
- once the runner is in the namespace it is registered as a member, and the lock is released;
  its member file goes when it ends.

Any member will do, so the group lives as long as any of its containers runs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import tempfile
from typing import Optional

from hpcbox_engine_runc.errors import EngineError


def group_dir(key: str, base: Optional[str] = None) -> str:
    """The group's directory (created, private to this user), for the key."""
    if base is None:
        shm = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
        base = "/dev/shm" if shm else tempfile.gettempdir()
    top = os.path.join(base, f"hpcbox-{os.getuid()}")
    _private_dir(top)
    userns = os.path.join(top, "userns")
    _private_dir(userns)
    path = os.path.join(userns, hashlib.sha256(key.encode()).hexdigest()[:32])
    _private_dir(path)
    return path


def _private_dir(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise EngineError(f"{path} is not a private directory of this user (owner {st.st_uid}, mode "
                          f"{stat.S_IMODE(st.st_mode):o}); remove it so that hpcbox can create it again")


def _start_time(pid: int) -> Optional[str]:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


class Group:
    """The locked group directory: ``find()`` a member's namespace, ``register(pid)`` a new member."""

    def __init__(self, key: str, base: Optional[str] = None):
        self.path = group_dir(key, base)
        self._lock = _locked(self.path)

    def release(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)  # drops the flock
            self._lock = -1

    def find(self) -> Optional[int]:
        """An open descriptor of a living member's user namespace, or None (stale members removed)."""
        for name in sorted(os.listdir(self.path)):
            if not name.isdigit():
                continue
            member = os.path.join(self.path, name)
            try:
                with open(member, encoding="ascii") as handle:
                    started, inode = handle.read().split()
                fd = os.open(f"/proc/{name}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
            except (OSError, ValueError):
                _unlink(member)
                continue
            if _start_time(int(name)) == started and str(os.fstat(fd).st_ino) == inode:
                return fd
            os.close(fd)
            _unlink(member)
        return None

    def register(self, pid: int) -> str:
        """Record runner *pid* (already in the group's namespace) as a member; return its file."""
        started = _start_time(pid)
        inode = os.stat(f"/proc/{pid}/ns/user").st_ino
        if started is None:
            raise EngineError(f"the runner (pid {pid}) ended before it joined its MPI job's namespace group")
        member = os.path.join(self.path, str(pid))
        with open(member, "w", encoding="ascii") as handle:
            handle.write(f"{started} {inode}\n")
        return member


def leave(member: str) -> None:
    """Remove a member's file; the last member out removes the group directory (under the lock)."""
    group = Group.__new__(Group)
    group.path = os.path.dirname(member)
    try:
        group._lock = _locked(group.path, create=False)
    except OSError:
        return
    try:
        _unlink(member)
        if not any(name.isdigit() for name in os.listdir(group.path)):
            _unlink(os.path.join(group.path, ".lock"))
            os.rmdir(group.path)
    except OSError:
        pass
    finally:
        group.release()


def _locked(path: str, create: bool = True) -> int:
    """An exclusive flock on PATH/.lock; retried when the last member removed the group meanwhile."""
    lock_path = os.path.join(path, ".lock")
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            if not create:
                raise
            _private_dir(path)
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
