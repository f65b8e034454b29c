"""The user's store: images as an OCI image layout, atomic writes, locks, garbage collection."""

from hpcbox import lazy

TYPE_CHECKING = False  # the names are loaded when first used (hpcbox.lazy): `hpcbox run` needs few
if TYPE_CHECKING:
    from hpcbox.store.layout import (
        AmbiguousImageError,
        Image,
        Store,
        StoreCorruptError,
        StoreError,
        UnknownImageError,
    )

_WHERE = {
    "AmbiguousImageError": "layout",
    "Image": "layout",
    "Store": "layout",
    "StoreCorruptError": "layout",
    "StoreError": "layout",
    "UnknownImageError": "layout",
}


__getattr__ = lazy.names(__name__, _WHERE)

__all__ = ["AmbiguousImageError", "Image", "Store", "StoreCorruptError", "StoreError", "UnknownImageError"]
