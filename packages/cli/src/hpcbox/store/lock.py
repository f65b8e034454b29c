"""Advisory file locks (flock) that guard the store against concurrent processes and threads.

`flock` locks belong to an open file description, so two threads that each open the lock file
exclude each other too, and the kernel drops the lock when a process dies (even on SIGKILL):
a crashed pull never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False  # typing for the checker only: `hpcbox run` imports this module
if TYPE_CHECKING:
    from typing import Optional


class LockBusy(Exception):
    """A non-blocking lock attempt found the lock held by someone else."""


class FileLock:
    """An flock on *path* (created if missing). Exclusive by default; ``shared=True`` for readers."""

    def __init__(self, path: os.PathLike[str] | str, shared: bool = False, blocking: bool = True):
        self.path = os.fspath(path)
        self.shared = shared
        self.blocking = blocking
        self._fd = -1

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        flags = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        if not self.blocking:
            flags |= fcntl.LOCK_NB
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            raise LockBusy(self.path) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)  # closing the description releases the flock

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class try_lock:
    """``with try_lock(path) as held:``: *held* True with the lock held, or False at once if someone else
    holds it (a class, not a contextlib generator: contextlib costs ~2 ms of `hpcbox run`)."""

    def __init__(self, path: os.PathLike[str] | str, shared: bool = False) -> None:
        self.lock: Optional[FileLock] = FileLock(path, shared=shared, blocking=False)

    def __enter__(self) -> bool:
        assert self.lock is not None
        try:
            self.lock.acquire()
        except LockBusy:
            self.lock = None
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.release()
