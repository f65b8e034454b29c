"""hpcbox mkrepo DIR: create an empty store at DIR (use it with --home DIR or HPCBOX_HOME=DIR)."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

from hpcbox.errors import UsageError


def run(args: Namespace) -> int:
    from hpcbox.store import Store

    target = Path(args.directory).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory", "choose another path")
    known = ("images", "containers", "tmp", "locks")
    if target.is_dir() and any(p.name not in known for p in target.iterdir()):
        raise UsageError(f"{target} is not empty and holds no store", "choose an empty or new directory")
    store = Store(target)
    store.init()
    store.containers_dir.mkdir(exist_ok=True)
    sys.stdout.write(f"{target}\n")
    return 0
