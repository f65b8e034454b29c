"""hpcbox load -i FILE [NAME]: images from a docker-archive ('docker save') or an OCI archive (detected)."""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Iterable, List, Tuple

from hpcbox import settings
from hpcbox.errors import UsageError

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox.store import Store


def run(args: Namespace) -> int:
    from hpcbox.store import archive as images

    operands = list(getattr(args, "operands", None) or [])
    source = args.input
    if operands and operands[0] == "-" and source is None:  # udocker's 'load -' (stdin)
        source = operands.pop(0)
    if not source:
        raise UsageError("no input file given", "use 'hpcbox load -i FILE' ('-i -' for stdin)")
    if len(operands) > 1:
        raise UsageError(f"load takes one NAME, got {' '.join(operands)}", "use 'hpcbox load -i FILE [NAME]'")
    store = settings.store(args)
    loaded = images.load_archive(store, source)
    if operands:
        return _name(store, loaded, operands[0])
    for names, config_digest in loaded:
        if names:
            for name in names:
                sys.stdout.write(f"Loaded image: {name}\n")
        else:
            sys.stdout.write(f"Loaded image ID: {config_digest}\n")
    return 0


def _name(store: Store, loaded: Iterable[Tuple[List[str], str]], name: str) -> int:
    """udocker's ``load -i FILE NAME``: the one image loaded also gets NAME (OCI archives often carry
    only a tag)."""
    from hpcbox.store import lookup

    loaded = list(loaded)
    if len(loaded) != 1:
        raise UsageError(f"the archive holds {len(loaded)} images, NAME names one",
                         "load it without NAME, then use 'hpcbox tag'")
    names, config_digest = loaded[0]
    ref = settings.parse_reference(name)
    if ref.digest:
        raise UsageError(f"NAME {name!r} has a digest", "give REPOSITORY[:TAG]")
    full = f"{ref.registry}/{ref.repository}:{ref.tag or 'latest'}"
    store.tag(lookup.find(store, names[0] if names else config_digest), full)
    sys.stdout.write(f"Loaded image: {full}\n")
    return 0
