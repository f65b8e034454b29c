"""The user's store: images as an OCI image layout, atomic writes, locks, garbage collection."""

from hpcbox.store.layout import (
    AmbiguousImageError,
    Image,
    Store,
    StoreCorruptError,
    StoreError,
    UnknownImageError,
)

__all__ = ["AmbiguousImageError", "Image", "Store", "StoreCorruptError", "StoreError", "UnknownImageError"]
