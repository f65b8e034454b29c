"""hpcbox protect|unprotect IMAGE|CONTAINER: protected ones refuse rm and rmi."""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import settings
from hpcbox.errors import EXIT_NOT_FOUND, HpcboxError


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore, UnknownContainerError
    from hpcbox.store import UnknownImageError, lookup
    from hpcbox.store import protect as images

    store = settings.store(args)
    protect = args.command == "protect"
    try:
        c = ContainerStore(store).get(args.target)
    except UnknownContainerError:
        c = None
    if c is not None:
        c.update(protected=protect)
        sys.stdout.write(f"container {c.short_id} {'protected' if protect else 'unprotected'}\n")
        return 0
    try:
        image = lookup.find(store, args.target)
    except UnknownImageError:
        raise HpcboxError(f"no container or image {args.target!r}",
                          "run 'hpcbox ps' or 'hpcbox images' to see them", EXIT_NOT_FOUND) from None
    images.set_image_protected(store, image, protect)
    sys.stdout.write(f"image {image.id.split(':', 1)[1][:12]} {'protected' if protect else 'unprotected'}\n")
    return 0
