"""hpcbox import [--tocontainer [--name N]] FILE IMAGE: a rootfs tar into a one-layer image (or container)."""

from __future__ import annotations

import os
import sys

from hpcbox import settings


def run(args) -> int:
    from hpcbox.containers import images

    store = settings.store(args)
    if args.name and not args.tocontainer:
        from hpcbox.errors import UsageError

        raise UsageError("--name needs --tocontainer",
                         "use 'hpcbox import --tocontainer --name N FILE IMAGE'")
    if args.tocontainer:
        return _to_container(store, args)
    name, config_digest = images.import_rootfs(store, args.file, args.image)
    sys.stderr.write(f"Imported {name}\n")
    sys.stdout.write(config_digest + "\n")
    return 0


def _to_container(store, args) -> int:
    from hpcbox.containers import ContainerStore, check_name, images

    if args.name:
        check_name(args.name)
    reference = images.canonical_name(args.image)
    if args.file != "-" and not os.path.isfile(args.file):
        raise images.ArchiveError(f"no file {args.file!r}", "check the path")
    store.init()
    cs = ContainerStore(store)
    meta = {"id": "", "names": [args.name] if args.name else [],
            "image": {"reference": reference, "manifest": None, "config": None},
            "image_config": images.default_config([], os.path.basename(args.file)),
            "created": "", "protected": False, "execmode": None, "settings": {}}

    def fill(rootfs) -> None:
        from hpcbox_layers import apply_layers

        if args.file == "-":
            with os.fdopen(os.dup(0), "rb") as stdin:
                apply_layers(rootfs, [(stdin, None)])
        else:
            apply_layers(rootfs, [(args.file, None)])

    cs._prepare()
    cs.clean_leftovers()
    c = cs._build(meta, fill)
    sys.stdout.write(c.id + "\n")
    return 0
