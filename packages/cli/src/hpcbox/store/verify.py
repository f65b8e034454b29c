"""Verify a stored image's blobs (``hpcbox verify``) and check its layers before they are applied."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Dict, Iterator, List, Optional

from hpcbox.store.layout import Image, Store

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox_layers import Layer


def checked_layers(store: Store, image: Image, manifest: Dict[str, Any]) -> List[Layer]:
    """The image's layers for ``apply_layers``, after the cheap check (present, right size); a blob that
    fails it is removed and named with the command that fetches it again."""
    from hpcbox.store.layout import StoreCorruptError, repair_command
    from hpcbox_layers import Layer

    found = []
    for desc in manifest.get("layers") or []:
        digest = desc.get("digest", "")
        path = store.readable_blob_path(digest)
        try:
            length = path.stat().st_size
        except FileNotFoundError:
            raise StoreCorruptError(f"layer blob {digest} is missing from the store; "
                                    f"{repair_command(image)}", digest) from None
        size = desc.get("size")
        if isinstance(size, int) and size >= 0 and length != size:
            removed = store.discard_damaged(digest, path)
            raise StoreCorruptError(f"layer blob {digest} is damaged ({length} bytes, the manifest says "
                                    f"{size}{'; removed' if removed else ''}); {repair_command(image)}",
                                    digest)
        found.append(Layer(path, desc.get("mediaType")))
    return found


@contextlib.contextmanager
def damaged_layer_check(store: Store, image: Image, manifest: Dict[str, Any]) -> Iterator[None]:
    """Around applying the layers: a layer that cannot be read gets its full digest check; one that
    fails it is a damaged blob of the store (removed, and the repair named), not a bad image."""
    from hpcbox.store.layout import StoreCorruptError, repair_command

    try:
        yield
    except Exception as exc:  # hpcbox_layers is imported only if the layers were applied
        layers_module = sys.modules.get("hpcbox_layers")
        if layers_module is None or not isinstance(exc, layers_module.CorruptLayerError):
            raise
        layers = manifest.get("layers") or []
        index = exc.layer_index
        if index is None or not 0 <= index < len(layers):
            raise
        digest = layers[index].get("digest", "")
        path = store.readable_blob_path(digest)
        try:
            from hpcbox.store.archive import _hash_stream

            with open(path, "rb") as handle:
                actual, _ = _hash_stream(handle)
        except OSError:
            raise exc from None
        if actual == digest:  # the blob is what the registry served: no repair helps
            from hpcbox.errors import EXIT_INTEGRITY, HpcboxError

            problem = " ".join(str(exc).split()).split("; ")[0]
            raise HpcboxError(f"{problem} (the layer's blob is intact: the image itself is malformed)",
                              "tell the image's publisher, or use another image", EXIT_INTEGRITY) from exc
        removed = store.discard_damaged(digest, path)
        raise StoreCorruptError(f"layer blob {digest} is damaged (its content does not match its "
                                f"digest{'; removed' if removed else ''}); {repair_command(image)}",
                                digest) from None


def verify_image(store: Store, image: Image, damaged: Optional[List[str]] = None) -> List[str]:
    """Problems found (empty: the image is intact): blob digests and sizes, config diff_ids. The digests
    of blobs that are missing or whose content is wrong are appended to *damaged*."""
    from hpcbox.store.archive import _hash_stream, diff_id_of

    problems = []
    damaged = [] if damaged is None else damaged

    def check(digest: str, size: Optional[int], what: str) -> bool:
        path = store.readable_blob_path(digest)
        if not path.is_file():
            problems.append(f"{what} {digest} is missing")
            damaged.append(digest)
            return False
        with open(path, "rb") as handle:
            actual, length = _hash_stream(handle)
        if actual != digest:
            problems.append(f"{what} {digest} has digest {actual}")
            damaged.append(digest)
            return False
        if size is not None and size != length:
            problems.append(f"{what} {digest} has {length} bytes, the manifest says {size}")
            damaged.append(digest)
            return False
        return True

    if not check(image.manifest_digest, image.manifest_size or None, "manifest"):
        return problems
    manifest = json.loads(store.read_blob(image.manifest_digest))
    config_desc = manifest.get("config") or {}
    if not check(config_desc.get("digest", ""), config_desc.get("size"), "config"):
        return problems
    try:
        config = json.loads(store.read_blob(config_desc["digest"]))
    except ValueError:
        problems.append(f"config {config_desc['digest']} is not JSON")
        return problems
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    layers = manifest.get("layers") or []
    if len(diff_ids) != len(layers):
        problems.append(f"config lists {len(diff_ids)} diff_ids for {len(layers)} layers")
    for i, desc in enumerate(layers):
        if not check(desc.get("digest", ""), desc.get("size"), f"layer {i}"):
            continue
        if i < len(diff_ids):
            try:
                actual = diff_id_of(store.readable_blob_path(desc["digest"]))
            except Exception as exc:  # a damaged compressed stream
                problems.append(f"layer {i} {desc['digest']} cannot be decompressed ({exc})")
                continue
            if actual != diff_ids[i]:
                problems.append(f"layer {i} {desc['digest']} decompresses to {actual}, "
                                f"config says {diff_ids[i]}")
    return problems
