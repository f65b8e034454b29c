"""Apply OCI/Docker image layers to a directory, unprivileged and safely.

    from hpcbox_layers import apply_layers, Layer
    from hpcbox_oci_bundle.mediatypes import OCI_LAYER_GZIP as gz
    report = apply_layers("rootfs", [Layer("blobs/sha256/ab…", gz), ("blobs/sha256/cd…", gz)])
"""

from hpcbox_layers.__about__ import __version__
from hpcbox_layers.apply import DEFAULT_MAX_EXPANSION, ApplyReport, Layer, apply_layers
from hpcbox_layers.errors import (
    CorruptLayerError,
    ExtractionLimitError,
    LayerError,
    UnsafeEntryError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "DEFAULT_MAX_EXPANSION",
    "ApplyReport",
    "CorruptLayerError",
    "ExtractionLimitError",
    "Layer",
    "LayerError",
    "UnsafeEntryError",
    "UnsupportedMediaTypeError",
    "__version__",
    "apply_layers",
]
