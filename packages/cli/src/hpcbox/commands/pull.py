"""hpcbox pull [--platform os/arch[/variant]] IMAGE[:TAG|@DIGEST]"""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import settings


def run(args: Namespace) -> int:
    from hpcbox import progress, udocker
    from hpcbox.store.pull import pull_image

    ref = settings.parse_reference(udocker.with_registry(args.image, getattr(args, "registry_url", None)))
    platform = None
    if args.platform:
        from hpcbox_registry import Platform

        platform = Platform.parse(args.platform)
    store = settings.store(args)
    with settings.client(args) as client:
        workers = getattr(getattr(client, "config", None), "max_workers", 4) or 4
        shown = progress.for_stream(sys.stderr, quiet=args.quiet, mode=getattr(args, "progress", None))
        result = pull_image(store, client, ref, platform=platform, progress=shown, workers=workers)
    name = result.names[0]
    if not args.quiet:
        sys.stderr.write(f"Digest: {result.source_digest}\n")
        if result.platform:
            sys.stderr.write(f"Platform: {result.platform}\n")
    sys.stdout.write(f"{name}\n")
    return 0
