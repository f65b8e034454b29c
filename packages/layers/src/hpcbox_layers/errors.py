"""The exception tree of hpcbox-layers: every error the library raises is a `LayerError`."""

from __future__ import annotations

from typing import Optional


class LayerError(Exception):
    """Base class: a layer could not be applied."""


class UnsupportedMediaTypeError(LayerError):
    """The media type (or the sniffed compression) is not one this library can unpack."""


class CorruptLayerError(LayerError):
    """The layer blob is not a readable (compressed) tar stream, or its entries contradict each other."""

    def __init__(self, message: str, *, layer_index: Optional[int] = None, entry: Optional[str] = None):
        super().__init__(message)
        self.layer_index = layer_index
        self.entry = entry


class UnsafeEntryError(LayerError):
    """An entry would create, change or delete something outside the target directory."""

    def __init__(self, entry: str, layer_index: int, reason: str):
        super().__init__(
            f"layer {layer_index}: unsafe entry {entry!r}: {reason}; refusing to apply this layer "
            "(the image is malformed or hostile; nothing was written outside the target)"
        )
        self.entry = entry
        self.layer_index = layer_index
        self.reason = reason


class ExtractionLimitError(LayerError):
    """A layer would write more than its limit (``max_expansion`` times its compressed size, or the
    free space of the target's filesystem): stopped before the disk fills."""

    def __init__(self, message: str, *, layer_index: int, limit: int):
        super().__init__(message)
        self.layer_index = layer_index
        self.limit = limit
