"""Find a stored image from what the user typed: a name (short or canonical), a digest reference, or an id."""

from __future__ import annotations

import re
from typing import List, Optional

from hpcbox.store.layout import Image, Store

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


def _qualified(text: str) -> bool:
    """*text* names its registry host (``host.domain``, ``host:port``, ``localhost``) and exactly one of
    a tag and a digest, as the stored names do."""
    host, slash, rest = text.partition("/")
    if not slash or not ("." in host or ":" in host or host == "localhost"):
        return False
    return ("@" in rest) != (":" in rest.rsplit("/", 1)[-1].split("@", 1)[0])


def _familiar(text: str) -> Optional[str]:
    """The canonical name of a Docker Hub name typed the short way (``alpine``, ``user/app``, either
    with a tag), as the registry package's parser gives it; None for anything else (a registry
    host, a digest), which is left to the parser."""
    first, slash, _ = text.partition("/")
    if (slash and ("." in first or ":" in first or first == "localhost")) or "@" in text or not text:
        return None
    name = text if slash else f"library/{text}"
    return f"docker.io/{name}" if ":" in name.rsplit("/", 1)[-1] else f"docker.io/{name}:latest"


def find(store: Store, text: str) -> Image:
    """The image *text* names in *store*; :class:`~hpcbox.store.UnknownImageError` when none.

    *text* spelt exactly as a stored name is found without parsing it: the index holds canonical names
    only, and a canonical name is its own canonical form (``tests/test_store.py``), so the answer is
    the same, without importing the registry package (~8 ms of `hpcbox run --rm IMAGE`). So is a
    Docker Hub name typed the short way (``_familiar``: the parser's expansion, checked by the same
    tests), the way most users type it."""
    fast = text if _qualified(text) else _familiar(text)
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
