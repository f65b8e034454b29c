"""Protected images (``hpcbox protect``): kept in ``<home>/protected-images.json``, never removed by ``rmi``
until unprotected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

from hpcbox.store.atomic import atomic_write_json
from hpcbox.store.layout import Image, Store


def _protect_path(store: Store) -> Path:
    return store.home / "protected-images.json"


def protected_images(store: Store) -> List[str]:
    try:
        data = json.loads(_protect_path(store).read_bytes())
    except (OSError, ValueError):
        return []
    return [d for d in data.get("manifests", []) if isinstance(d, str)] if isinstance(data, dict) else []


def set_image_protected(store: Store, image: Image, protected: bool) -> None:
    store.init()
    with store.index_lock():
        current = protected_images(store)
        wanted = [d for d in current if d != image.manifest_digest]
        if protected:
            wanted.append(image.manifest_digest)
        atomic_write_json(_protect_path(store), {"manifests": wanted}, temp_dir=store.tmp_dir)


def is_image_protected(store: Store, image: Image) -> bool:
    return image.manifest_digest in protected_images(store)
