"""Layer media types, compression sniffing and streaming decompression, all in one place."""

from __future__ import annotations

import io
from typing import Any, BinaryIO, Optional, Protocol, Tuple

from hpcbox_oci_bundle.mediatypes import LAYER_COMPRESSION, X_TAR, base

from hpcbox_layers.errors import UnsupportedMediaTypeError

TAR = "tar"
GZIP = "gzip"
ZSTD = "zstd"

#: Every media type accepted, and the compression it announces (the types are hpcbox's one table,
#: hpcbox_oci_bundle.mediatypes, plus the generic application/x-tar).
LAYER_MEDIA_TYPES = {media_type: compression or TAR for media_type, compression in LAYER_COMPRESSION.items()}
LAYER_MEDIA_TYPES[X_TAR] = TAR

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x04\x22\x4d\x18": "lz4"}

# Big reads keep the per-call Python overhead negligible next to the decompression itself.
_BLOCK = 1 << 20


def check_media_type(media_type: Optional[str]) -> Optional[str]:
    """Return the compression a media type announces (None: unknown, sniff it), or raise."""
    if media_type is None:
        return None
    plain = base(media_type)
    if plain in LAYER_MEDIA_TYPES:
        return LAYER_MEDIA_TYPES[plain]
    raise UnsupportedMediaTypeError(
        f"unsupported layer media type {media_type!r}; expected one of the OCI or Docker layer types "
        "(tar, tar+gzip, tar+zstd), or pass media_type=None to sniff the compression"
    )


def sniff(head: bytes) -> str:
    """The compression of a blob from its first bytes: gzip, zstd, or tar (anything else)."""
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_ZSTD_MAGIC):
        return ZSTD
    for magic, name in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedMediaTypeError(
                f"layer is {name}-compressed, which OCI images do not use; recompress it as gzip or zstd"
            )
    return TAR


def open_stream(raw: BinaryIO, media_type: Optional[str]) -> Tuple[BinaryIO, Optional[BinaryIO]]:
    """A readable stream of the uncompressed tar of `raw` (read forward only, never copied), and the
    object to close when done (None: nothing of ours to close; `raw` itself is never closed).

    The compression is taken from the magic bytes; the media type only has to be a layer type. Docker
    does the same, and registries exist that label uncompressed layers as gzip.
    """
    check_media_type(media_type)
    # _Raw in between: when our buffer goes, the caller's object stays open.
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_Raw(raw), _BLOCK)
    head = buffered.peek(8)[:8]
    kind = sniff(head)
    if kind == GZIP:
        try:
            from isal import igzip_threaded
        except ImportError:
            # Distributions without python-isal (Debian 12) drop the dependency: zlib, 3-4x slower.
            import gzip

            stream = gzip.GzipFile(fileobj=buffered, mode="rb")
            return io.BufferedReader(_Raw(stream), _BLOCK), stream  # type: ignore[return-value]  # reads like one
        # The worker thread inflates (ISA-L, GIL released) while the caller writes files.
        stream = igzip_threaded.open(  # type: ignore[no-untyped-call]  # isal does not annotate open()
            buffered, "rb", threads=1, block_size=_BLOCK)
        return stream, stream
    if kind == ZSTD:
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(
            buffered, read_size=_BLOCK, read_across_frames=True, closefd=False
        )
        return io.BufferedReader(_Raw(reader), _BLOCK), reader
    return buffered, None


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Raw(io.RawIOBase):
    """Adapts any object with read(n) to RawIOBase, so io.BufferedReader can sit on it."""

    def __init__(self, inner: _Readable) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:  # a writable buffer: bytearray or memoryview
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = data
        return n
