"""hpcbox clone [--name N] CONTAINER: a new container with a copy of CONTAINER's rootfs and settings."""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import settings


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore

    c = ContainerStore(settings.store(args)).clone(args.container, args.name)
    sys.stdout.write(c.id + "\n")
    return 0
