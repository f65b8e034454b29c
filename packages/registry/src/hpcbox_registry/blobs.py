"""Blob downloads into files: resumed with ``Range`` from the bytes already written, verified while
streaming, retried with the transport's back-off while they make progress.

:class:`~hpcbox_registry.client.RegistryClient` chooses the host (mirrors first) and the file; this
module does one host's download. It imports the transport, never the client.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
from typing import IO, TYPE_CHECKING, Any, Callable, Optional, Tuple

import requests
import urllib3

from hpcbox_registry.errors import DigestMismatchError, RegistryConnectionError

if TYPE_CHECKING:
    from hpcbox_registry.manifest import Descriptor
    from hpcbox_registry.transport import Transport

CHUNK_SIZE = 1024 * 1024

#: What can break a download in the middle of the body: resume from the bytes already written.
STREAM_ERRORS = (
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    requests.exceptions.RequestException,
    ConnectionError,
    TimeoutError,
)

ProgressFn = Optional[Callable[[int], None]]

_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class _ShortBody(Exception):
    """The blob body ended cleanly before the descriptor's size."""


def range_start(resp: requests.Response) -> Optional[int]:
    """The first byte of a ``206`` reply (its ``Content-Range``), or None."""
    m = _CONTENT_RANGE_RE.match(resp.headers.get("Content-Range", ""))
    return int(m.group(1)) if m else None


def _held(f: IO[bytes], algorithm: str, size: int) -> Tuple[Any, int]:
    """The hash and length of what *f* already holds; emptied when longer than the blob."""
    f.seek(0)
    hasher = hashlib.new(algorithm)
    have = 0
    for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
        hasher.update(chunk)
        have += len(chunk)
    if size >= 0 and have > size:
        f.truncate(0)
        hasher, have = hashlib.new(algorithm), 0
    return hasher, have


def download(
    transport: Transport,
    host: str,
    blob_path: str,
    descriptor: Descriptor,
    path: str,
    *,
    progress: ProgressFn = None,
    what: str = "",
) -> str:
    """Fetch the blob at *blob_path* of *host* into *path*, keeping the prefix already there;
    returns *path*. A cut or short body resumes; ``max_retries`` failures in a row without
    progress raise :class:`RegistryConnectionError`; a size or digest mismatch deletes *path* and
    raises :class:`DigestMismatchError`. ``progress(n)`` gets the bytes added (negative when a
    server that ignores ``Range`` forces a restart)."""
    algorithm = descriptor.digest.split(":", 1)[0]
    size = descriptor.size
    what = what or f"blob {descriptor.digest}"
    with open(path, "ab+") as f:
        hasher, have = _held(f, algorithm, size)
        failures = 0
        best = have
        while not (size >= 0 and have == size):
            resp = transport.request(
                "GET",
                host,
                blob_path,
                headers={"Range": f"bytes={have}-"} if have else {},
                stream=True,
                what=what,
                ok=(200, 206, 416) if have else (200,),
            )
            try:
                if resp.status_code == 416:
                    break  # nothing beyond what we hold: verify it below
                if have and (resp.status_code == 200 or range_start(resp) != have):
                    # the server ignored the Range (or answered another one): start over cleanly
                    f.seek(0)
                    f.truncate(0)
                    if progress:
                        progress(-have)
                    hasher, have = hashlib.new(algorithm), 0
                f.seek(0, os.SEEK_END)
                try:
                    for chunk in resp.raw.stream(CHUNK_SIZE, decode_content=False):
                        if not chunk:
                            continue
                        f.write(chunk)
                        hasher.update(chunk)
                        have += len(chunk)
                        if progress:
                            progress(len(chunk))
                        if 0 <= size < have:
                            break
                    if 0 <= have < size:  # a clean end of stream short of the size: resume too
                        raise _ShortBody(f"the body ended at byte {have} of {size}")
                except (*STREAM_ERRORS, _ShortBody) as exc:
                    if have > best:  # progress since the last failure: not counted
                        best, failures = have, 0
                    else:
                        failures += 1
                    if failures > transport.config.max_retries:
                        raise RegistryConnectionError(
                            f"download of {what} from {host} keeps failing at byte {have} ({exc})"
                        ) from exc
                    f.flush()
                    transport.pause(failures)
                    continue
            finally:
                resp.close()
            break
        f.flush()
        os.fsync(f.fileno())
    got = f"{algorithm}:{hasher.hexdigest()}"
    if (size >= 0 and have != size) or got != descriptor.digest:
        os.unlink(path)
        detail = f"{have} bytes, expected {size}" if size >= 0 and have != size else f"got {got}"
        raise DigestMismatchError(f"{what} from {host} failed verification ({detail})")
    return path
