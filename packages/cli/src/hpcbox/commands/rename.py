"""hpcbox rename OLD NEW: rename a container (OLD may be a name or an id)."""

from __future__ import annotations

from hpcbox import settings


def run(args) -> int:
    from hpcbox.containers import ContainerStore

    ContainerStore(settings.store(args)).rename(args.old, args.new)
    return 0
