"""Advisory file locks (flock) that guard the store against concurrent processes and threads.

`flock` locks belong to an open file description, so two threads that each open the lock file
exclude each other too, and the kernel drops the lock when a process dies (even on SIGKILL):
a crashed pull never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator


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


@contextlib.contextmanager
def try_lock(path: os.PathLike[str] | str, shared: bool = False) -> Iterator[bool]:
    """Yield True with the lock held, or False at once if someone else holds it."""
    lock = FileLock(path, shared=shared, blocking=False)
    try:
        lock.acquire()
    except LockBusy:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
