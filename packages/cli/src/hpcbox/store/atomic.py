"""Atomic file writes: a temp file in a directory on the same filesystem, fsync, rename."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Optional, Tuple, Union

from hpcbox import storefiles

PathLike = Union[str, "os.PathLike[str]"]

#: Prefix of every temporary file the store creates, so that cleanup can find the leftovers.
TEMP_PREFIX = ".tmp-"


def fsync_dir(directory: PathLike) -> None:
    """Make a rename or unlink in *directory* durable."""
    fd = os.open(os.fspath(directory), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_temp_file(where: PathLike) -> Tuple[int, str]:
    """A new file (descriptor, path) named TEMP_PREFIX + random in *where*, as tempfile.mkstemp makes
    one (O_EXCL, mode 0600, not inherited), without tempfile's imports (random, hashlib: ~2 ms of each
    `hpcbox run IMAGE`, which writes container.json)."""
    base = os.path.abspath(where)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        name = os.path.join(base, f"{TEMP_PREFIX}{os.urandom(8).hex()}")
        try:
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {base}")


@contextlib.contextmanager
def atomic_writer(path: PathLike, temp_dir: Optional[PathLike] = None, mode: int = 0o644) -> Iterator[Any]:
    """Open a temp file for binary writing; on success it replaces *path* atomically.

    The temp file lives in *temp_dir* (default: the directory of *path*), which must be on the
    same filesystem. On any exception the temp file is removed and *path* is left untouched.
    """
    target = Path(path)
    where = Path(temp_dir) if temp_dir is not None else target.parent
    fd, tmp_name = new_temp_file(where)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: PathLike, data: bytes, temp_dir: Optional[PathLike] = None,
                       mode: int = 0o644) -> None:
    """Replace *path* with *data* atomically (readers see the old or the new content, never a mix)."""
    with atomic_writer(path, temp_dir=temp_dir, mode=mode) as handle:
        handle.write(data)


json_document = storefiles.json_document


def atomic_write_json(path: PathLike, value: Any, temp_dir: Optional[PathLike] = None) -> None:
    """Replace *path* with *value* serialised as JSON, atomically."""
    atomic_write_bytes(path, json_document(value), temp_dir=temp_dir)
