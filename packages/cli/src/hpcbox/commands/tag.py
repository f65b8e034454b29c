"""hpcbox tag SOURCE TARGET"""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import settings
from hpcbox.errors import UsageError
from hpcbox.store import lookup


def run(args: Namespace) -> int:
    store = settings.store(args)
    image = lookup.find(store, args.source)
    if image.source is not None:
        raise UsageError(f"image {args.source} is in the read-only image store {image.source.home}",
                         f"pull it into your own store first ('hpcbox pull {args.source}'), then tag it")
    ref = settings.parse_reference(args.target)
    if ref.digest:
        raise UsageError(f"target {args.target!r} has a digest", "a tag target is REPOSITORY[:TAG]")
    name = f"{ref.registry}/{ref.repository}:{ref.tag or 'latest'}"
    store.tag(image, name)
    sys.stdout.write(f"{name}\n")
    return 0
