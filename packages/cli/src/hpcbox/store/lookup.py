"""Find a stored image from what the user typed: a name (short or canonical), a digest reference, or an id."""

from __future__ import annotations

import re
from typing import List

from hpcbox.store.layout import Image, Store
from hpcbox.storefiles import stored_name

_ID_RE = re.compile(r"^(sha256:)?[0-9a-f]{4,64}$")


def canonical_names(text: str) -> List[str]:
    """The index names *text* may stand for (``alpine`` -> ``docker.io/library/alpine:latest``)."""
    from hpcbox_registry import ImageReference

    ref = ImageReference.parse(text)
    base = f"{ref.registry}/{ref.repository}"
    names = []
    if ref.digest:
        names.append(f"{base}@{ref.digest}")
    if ref.tag:
        names.append(f"{base}:{ref.tag}")
    return names


def find(store: Store, text: str) -> Image:
    """The image *text* names in *store*; :class:`~hpcbox.store.UnknownImageError` when none.

    *text* spelt exactly as a stored name is found without parsing it: the index holds canonical names
    only, and a canonical name is its own canonical form (``tests/test_store.py``), so the answer is
    the same, without importing the registry package (~8 ms of `hpcbox run --rm IMAGE`). So is a
    Docker Hub name typed the short way (:func:`hpcbox.storefiles.familiar`: the parser's expansion,
    checked by the same tests), the way most users type it."""
    fast = stored_name(text)
    if fast:
        from hpcbox.store import UnknownImageError

        try:
            return store.find([fast])
        except UnknownImageError:
            pass
    is_id = bool(_ID_RE.match(text))
    try:
        names = canonical_names(text)
    except Exception:
        if not is_id:
            raise
        names = []
    return store.find(names, id_prefix=text if is_id else None)
