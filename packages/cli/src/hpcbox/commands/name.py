"""hpcbox name CONTAINER NAME: give a container another name."""

from __future__ import annotations

from argparse import Namespace

from hpcbox import settings


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore

    ContainerStore(settings.store(args)).add_name(args.container, args.name)
    return 0
