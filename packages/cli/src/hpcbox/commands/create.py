"""hpcbox create [--name N] [--platform P] [--overlay] IMAGE: extract an image into a new container (pulls if
missing); with --overlay (or HPCBOX_CREATE_MODE=overlay) the container is an overlay over the image's
shared rootfs, made in milliseconds (see hpcbox.containers.overlay)."""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Optional

from hpcbox import settings

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox.store import Store
    from hpcbox_registry import Platform


def pull_if_missing(args: Namespace, store: Store, text: str, platform_text: Optional[str] = None) -> None:
    """Pull *text* unless the store has it (for the requested platform, when one is given)."""
    from hpcbox.store import UnknownImageError, lookup

    platform = None
    if platform_text:
        from hpcbox_registry import Platform

        platform = Platform.parse(platform_text)
    try:
        image = lookup.find(store, text)
        if platform is None or not image.platform or (
                image.platform.get("architecture") == platform.architecture
                and image.platform.get("os") == platform.os):
            return
    except UnknownImageError:
        pass
    pull_by_name(args, store, text, platform)


def pull_by_name(args: Namespace, store: Store, text: str, platform: Optional[Platform] = None) -> None:
    """Pull *text* into *store* (progress on stderr unless ``args.quiet``)."""
    from hpcbox import progress
    from hpcbox.store.pull import pull_image

    ref = settings.parse_reference(text)
    quiet = getattr(args, "quiet", False)
    with settings.client(args) as client:
        workers = getattr(getattr(client, "config", None), "max_workers", 4) or 4
        pull_image(store, client, ref, platform=platform,
                   progress=progress.for_stream(sys.stderr, quiet=quiet,
                                                mode=getattr(args, "progress", None)),
                   workers=workers)


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore, check_name

    if args.name is not None:
        check_name(args.name)
    store = settings.store(args)
    pull_if_missing(args, store, args.image, args.platform)
    platform = None
    if args.platform:
        from hpcbox_registry import Platform

        platform = Platform.parse(args.platform)
    from hpcbox.output import note

    storage = "overlay" if getattr(args, "overlay", False) else None
    container = ContainerStore(store).create(args.image, args.name, platform=platform, storage=storage,
                                             on_note=note)
    sys.stdout.write(container.id + "\n")
    return 0
