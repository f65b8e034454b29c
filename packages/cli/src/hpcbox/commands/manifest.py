"""hpcbox manifest inspect [--raw] IMAGE: the manifest or index as the registry serves it."""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import output, settings


def run(args: Namespace) -> int:
    ref = settings.parse_reference(args.image)
    with settings.client(args) as client:
        manifest = client.get_manifest(ref)
    if args.raw:
        sys.stdout.buffer.write(manifest.raw)
        sys.stdout.flush()
    else:
        output.print_json(manifest.data)
    return 0
