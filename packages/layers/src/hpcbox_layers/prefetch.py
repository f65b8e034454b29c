"""Decompress a layer blob ahead, in a thread, while the layer before it is being applied.

Applying a layer is file creation (Python and system calls, one core); decompressing one is ISA-L or
zstd inflating in C with the GIL released. A `Prefetch` opens the next layer's blob and fills a
bounded queue (`PREFETCH_BYTES`) with its uncompressed tar while `apply_layers` still writes the
current layer, so two cores work where one did. The entries are still applied one layer after the
other, in order, by the one applying thread: only the bytes arrive early.

Errors keep their place: a blob that cannot be opened, has an unknown compression or is damaged raises
the same exception, from the same call, as it would without the prefetch, when its layer is applied.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Optional, Tuple, Union

from hpcbox_layers.mediatypes import open_stream

PREFETCH_BYTES = 64 << 20  # uncompressed bytes held ahead at most
_CHUNK = 1 << 20
_DATA, _END, _ERROR, _OPENED = range(4)


class _OpenError(Exception):
    """The blob could not be opened (the OSError is in `error`)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class Prefetch:
    """The uncompressed tar of the blob at *path*, decompressed ahead by a thread; read it forward
    with `read()` after `opened()`, and `close()` it in every case."""

    def __init__(self, path: Union[str, os.PathLike[str]], media_type: Optional[str]) -> None:
        self._queue: queue.Queue[Tuple[int, Any]] = queue.Queue(maxsize=max(1, PREFETCH_BYTES // _CHUNK))
        self._stop = threading.Event()
        self._buffer = b""
        self._pos = 0
        self._done = False
        self.blob_size = 0  # the compressed blob's size, known once opened() has returned
        self._thread = threading.Thread(target=self._work, args=(path, media_type), daemon=True,
                                        name="hpcbox-layers-prefetch")
        self._thread.start()

    # -- the decompressing thread ------------------------------------------------------------------

    def _put(self, kind: int, value: Any) -> bool:  # a chunk (bytes), an error, or nothing at the end
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, path: Union[str, os.PathLike[str]], media_type: Optional[str]) -> None:
        try:
            raw = open(path, "rb", buffering=_CHUNK)  # noqa: SIM115 - closed below
        except OSError as e:
            self._put(_ERROR, _OpenError(e))
            return
        try:
            try:
                self.blob_size = os.fstat(raw.fileno()).st_size
                stream, closer = open_stream(raw, media_type)
            except BaseException as e:  # an unknown compression, an unreadable blob: raised in order
                self._put(_ERROR, e)
                return
            try:
                if not self._put(_OPENED, None):
                    return
                while not self._stop.is_set():
                    data = stream.read(_CHUNK)
                    if not data:
                        self._put(_END, None)
                        return
                    if not self._put(_DATA, data):
                        return
            except BaseException as e:  # a damaged blob: raised where the reader reaches it
                self._put(_ERROR, e)
            finally:
                if closer is not None:
                    closer.close()
        finally:
            raw.close()

    # -- the applying thread -------------------------------------------------------------------------

    def _next(self) -> bool:
        """Take the next chunk into the buffer; False at the end of the stream."""
        if self._done:
            return False
        kind, value = self._queue.get()
        if kind == _DATA:
            self._buffer, self._pos = value, 0
            return True
        self._done = True
        if kind == _ERROR:
            raise value
        return False

    def opened(self) -> Prefetch:
        """Wait until the blob is open and its compression known; raise what opening it raised."""
        kind, value = self._queue.get()
        if kind == _ERROR:
            self._done = True
            raise value
        return self

    def read(self, size: int = -1) -> bytes:
        parts = []
        while size != 0:
            if self._pos >= len(self._buffer) and not self._next():
                break
            available = len(self._buffer) - self._pos
            take = available if size < 0 else min(size, available)
            if take == len(self._buffer):
                parts.append(self._buffer)
            else:
                parts.append(self._buffer[self._pos:self._pos + take])
            self._pos += take
            if size > 0:
                size -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Stop the thread (if it is still working) and let it close the blob."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()
