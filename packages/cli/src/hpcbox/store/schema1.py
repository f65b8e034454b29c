"""Legacy Docker schema1 images: give them a proper OCI config once their layers are downloaded.

The registry client synthesises a config from ``v1Compatibility`` but cannot know the layers'
``diff_ids`` (the sha256 of each *uncompressed* layer) before they are downloaded; this module
computes them from the stored blobs and completes the config.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import List, Optional

from hpcbox_oci_bundle import mediatypes

_CHUNK = 1 << 20


def is_schema1(media_type: Optional[str]) -> bool:
    return mediatypes.is_schema1(media_type)


def diff_id(path: Path) -> str:
    """sha256 of the uncompressed content of a gzip (or plain tar) layer blob."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        head = handle.read(2)
        handle.seek(0)
        if head != b"\x1f\x8b":
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
            return "sha256:" + digest.hexdigest()
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        for block in iter(lambda: handle.read(_CHUNK), b""):
            data = block
            while data:
                digest.update(inflater.decompress(data))
                if inflater.eof:  # concatenated gzip members
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                else:
                    data = b""
        digest.update(inflater.flush())
    return "sha256:" + digest.hexdigest()


def complete_config(config_bytes: bytes, layer_paths: List[Path]) -> bytes:
    """The synthesised config with ``rootfs.diff_ids`` filled in from the downloaded layers."""
    config = json.loads(config_bytes)
    config["rootfs"] = {"type": "layers", "diff_ids": [diff_id(p) for p in layer_paths]}
    config.setdefault("os", "linux")
    config.setdefault("architecture", "amd64")
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
