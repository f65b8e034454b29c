"""hpcbox import [--tocontainer|--clone] [--name N] FILE [IMAGE]: a rootfs tar into a one-layer image, or
straight into a container; ``--clone`` restores a container written by ``export --clone`` (hpcbox's, or
udocker's ``<id>/ROOT`` + ``<id>/container.json`` layout)."""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from typing import Any, Dict

from hpcbox import settings
from hpcbox.errors import UsageError

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from pathlib import Path

    from hpcbox.store import Store

IMPORTED = "imported:latest"  # the image name recorded for a container imported without one


def run(args: Namespace) -> int:
    from hpcbox.store import archive as images

    store = settings.store(args)
    if args.name and not (args.tocontainer or args.clone):
        raise UsageError("--name needs --tocontainer or --clone",
                         "use 'hpcbox import --tocontainer --name N FILE [IMAGE]'")
    if args.clone:
        if args.image:
            raise UsageError("--clone restores the container's own image name",
                             "use 'hpcbox import --clone [--name N] FILE'")
        return _to_container(store, args, clone=True)
    if args.tocontainer:
        return _to_container(store, args)
    if not args.image:
        raise UsageError("no image name given", "use 'hpcbox import FILE IMAGE[:TAG]' (or --tocontainer)")
    name, config_digest = images.import_rootfs(store, args.file, args.image)
    sys.stderr.write(f"Imported {name}\n")
    sys.stdout.write(config_digest + "\n")
    return 0


def _to_container(store: Store, args: Namespace, clone: bool = False) -> int:
    from hpcbox.containers import ContainerStore, check_name
    from hpcbox.store import archive as images

    if args.name:
        check_name(args.name)
    reference = images.canonical_name(args.image or IMPORTED)
    if args.file != "-" and not os.path.isfile(args.file):
        raise images.ArchiveError(f"no file {args.file!r}", "check the path")
    store.init()
    cs = ContainerStore(store)
    meta = {"id": "", "names": [args.name] if args.name else [],
            "image": {"reference": reference, "manifest": None, "config": None},
            "image_config": images.default_config([], os.path.basename(args.file)),
            "created": "", "protected": False, "execmode": None, "settings": {}}

    def apply(target: Path) -> None:
        from hpcbox_layers import apply_layers

        if args.file == "-":
            with os.fdopen(os.dup(0), "rb") as stdin:
                apply_layers(target, [(stdin, None)])
        else:
            apply_layers(target, [(args.file, None)])

    def fill(rootfs: Path) -> None:
        if not clone:
            apply(rootfs)
            return
        unpacked = rootfs.parent / "clone"
        unpacked.mkdir()
        apply(unpacked)
        _restore(unpacked, rootfs, meta)

    cs._prepare()
    cs.clean_leftovers()
    c = cs._build(meta, fill)
    sys.stdout.write(c.id + "\n")
    return 0


def _restore(unpacked: Path, rootfs: Path, meta: Dict[str, Any]) -> None:
    """Move the clone's root tree to *rootfs* and take its metadata into *meta*."""
    import json

    from hpcbox.containers import remove_tree

    found = unpacked / "rootfs"
    info = unpacked / "container.json"
    execmode = None
    if not found.is_dir():  # udocker: one <id>/ directory holding ROOT/, container.json and execmode
        subdirs = [d for d in unpacked.iterdir() if (d / "ROOT").is_dir()]
        if len(subdirs) != 1:
            raise UsageError("the tar is not a container clone (no rootfs/ or <id>/ROOT/ in it)",
                             "make it with 'hpcbox export --clone' or 'udocker export --clone', or use "
                             "'hpcbox import --tocontainer' for a plain rootfs tar")
        found, info = subdirs[0] / "ROOT", subdirs[0] / "container.json"
        mode_file = subdirs[0] / "execmode"
        if mode_file.is_file():
            execmode = mode_file.read_text().strip() or None
    try:
        data = json.loads(info.read_text())
    except (OSError, ValueError):
        data = {}
    if isinstance(data, dict) and data.get("hpcbox_clone"):
        for key in ("image", "image_config", "execmode", "settings"):
            if key in data:
                meta[key] = data[key]
    elif isinstance(data, dict) and data:
        meta["image_config"] = data  # udocker keeps the image's config there
    if execmode:
        from hpcbox.commands.setup import EXECMODES, settings_for

        if execmode.upper() in EXECMODES:
            meta["execmode"], meta["settings"] = execmode.upper(), settings_for(execmode)
    rootfs.rmdir()
    os.rename(found, rootfs)
    remove_tree(unpacked)
