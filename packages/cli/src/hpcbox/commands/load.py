"""hpcbox load -i FILE: images from a docker-archive ('docker save') or an OCI archive (detected)."""

from __future__ import annotations

import sys

from hpcbox import settings
from hpcbox.errors import UsageError


def run(args) -> int:
    from hpcbox.containers import images

    if not args.input:
        raise UsageError("no input file given", "use 'hpcbox load -i FILE' ('-i -' for stdin)")
    for names, config_digest in images.load_archive(settings.store(args), args.input):
        if names:
            for name in names:
                sys.stdout.write(f"Loaded image: {name}\n")
        else:
            sys.stdout.write(f"Loaded image ID: {config_digest}\n")
    return 0
