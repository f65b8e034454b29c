"""hpcbox rmname NAME: remove a container's name (the container stays)."""

from __future__ import annotations

from argparse import Namespace

from hpcbox import settings


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore

    ContainerStore(settings.store(args)).remove_name(args.name)
    return 0
