"""Is a `run` argument that names neither a container nor a local image a misspelt container name,
or an image to pull?

A reference with a registry host, a path, a tag or a digest (any of ``/``, ``:``, ``@``) is clearly for a
registry and is pulled. A bare word is tried as a Docker Hub short name (``debian`` means
``docker.io/library/debian:latest``, Docker's habit) unless it cannot be or hardly is one:

- it has an uppercase letter (image references are lowercase), or an underscore (no official image
  has one; Docker's generated container names do, as ``c_nonexist`` does);
- it is 12 or more hex digits (a container id prefix);
- a container's name is close to it (difflib ratio >= 0.75: ``wrok`` for ``work``).

Then ``run`` says "no such container or image" with the closest names instead of asking a registry.
"""

from __future__ import annotations

import difflib
import re
from typing import Iterable, List, Optional

_HEX_ID = re.compile(r"^[0-9a-f]{12,64}$")


def clearly_registry_reference(text: str) -> bool:
    return any(c in text for c in "/:@")


def misspelt_container(text: str, containers: Iterable[str],
                       images: Iterable[str] = ()) -> Optional[List[str]]:
    """None when *text* should be pulled; else the closest container and image names (maybe none)."""
    if clearly_registry_reference(text):
        return None
    containers = list(containers)
    close_containers = difflib.get_close_matches(text, containers, n=3, cutoff=0.75)
    if not (close_containers or text != text.lower() or "_" in text or _HEX_ID.match(text)):
        return None
    return difflib.get_close_matches(text, [*containers, *images], n=3, cutoff=0.6)
