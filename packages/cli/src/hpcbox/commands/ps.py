"""hpcbox ps [--json] [-q] [-s]: list the containers."""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from typing import (
    List,  # (not on the run path)
    Union,
)

from hpcbox import output, settings


def tree_size(path: Union[str, os.PathLike[str]]) -> int:
    total = 0
    seen = set()
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore

    cs = ContainerStore(settings.store(args))
    containers = cs.list()
    damaged = cs.damaged({c.id for c in containers})  # listed, marked: 'rm' and 'prune' remove them
    if args.quiet:
        for c in containers:
            sys.stdout.write(c.short_id + "\n")
        for d in damaged:
            sys.stdout.write(d.short_id + "\n")
        return 0
    sizes = {}
    if args.size:  # an overlay container's own size: its upper directory (the image rootfs is shared)
        sizes = {c.id: tree_size(c.upper if c.storage == "overlay" else c.rootfs) for c in containers}
    if args.json:
        rows = []
        for c in containers:
            row = {"id": c.id, "names": c.names, "image": c.image, "created": c.created,
                   "protected": c.protected, "execmode": c.execmode, "settings": c.settings,
                   "rootfs": str(c.rootfs), "storage": c.storage}
            if args.size:
                row["size"] = sizes[c.id]
            rows.append(row)
        rows += [{"id": d.id, "names": d.names, "damaged": d.reason} for d in damaged]
        output.print_json(rows)
        return 0
    headers = ["CONTAINER ID", "P", "MODE", "NAMES", "IMAGE", "CREATED", "STORAGE"]
    if args.size:
        headers.append("SIZE")
    table: List[List[str]] = []
    for c in containers:
        line = [c.short_id, "P" if c.protected else ".", c.execmode or "-", ",".join(c.names) or "-",
                c.image.get("reference", "-"), c.created[:19].replace("T", " "), c.storage]
        if args.size:
            line.append(output.human_size(sizes[c.id]))
        table.append(line)
    for d in damaged:
        line = [d.short_id, "!", "-", ",".join(d.names) or "-", f"DAMAGED: {d.reason}", "-", "-"]
        if args.size:
            line.append(output.human_size(tree_size(d.dir)))
        table.append(line)
    output.table(headers, table)
    if damaged:
        sys.stderr.write(f"hpcbox: note: {len(damaged)} damaged containers (marked !): remove them with "
                         f"'hpcbox rm ID' or 'hpcbox prune'\n")
    return 0
