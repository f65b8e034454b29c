"""hpcbox rename OLD NEW: rename a container (OLD may be a name or an id)."""

from __future__ import annotations

from argparse import Namespace

from hpcbox import settings


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore

    ContainerStore(settings.store(args)).rename(args.old, args.new)
    return 0
