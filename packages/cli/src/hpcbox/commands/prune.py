"""hpcbox prune [--containers]: remove unused blobs, leftovers of interrupted pulls/creates, temp files,
damaged containers (container.json lost) that no process uses; with --containers also every
container that is neither protected nor in use."""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import output, settings


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore

    store = settings.store(args)
    cs = ContainerStore(store)
    removed_containers = []
    if args.containers:
        for c in cs.list():
            if c.protected or c.is_in_use():
                continue
            cs.remove(c.id)
            removed_containers.append(c.id)
    damaged = cs.remove_damaged()  # containers whose container.json was lost: nothing can run them
    leftovers = cs.clean_leftovers()
    blobs = store.gc()
    from hpcbox.containers.overlay import clean_image_rootfs

    clean_image_rootfs(store, cs)  # image rootfs trees nothing refers to any more
    temp_ok = store.clean_temp()
    for cid in removed_containers:
        sys.stdout.write(f"Deleted container: {cid}\n")
    for d in damaged:
        sys.stdout.write(f"Deleted damaged container: {d.id} ({d.reason})\n")
    if leftovers:
        sys.stdout.write(f"Removed {len(leftovers)} leftovers of interrupted creates/removals\n")
    if blobs is None or not temp_ok:
        sys.stderr.write("hpcbox: note: a pull or create is running; run prune again later to clean its "
                         "area\n")
    elif store.gc_held_by:
        from hpcbox.store.layout import gc_held_note

        sys.stderr.write(gc_held_note(store.gc_held_by))
    elif blobs:
        sys.stdout.write(f"Freed {output.human_size(sum(s for _, s in blobs))} in {len(blobs)} blobs\n")
    return 0
