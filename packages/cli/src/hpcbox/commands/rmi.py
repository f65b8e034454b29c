"""hpcbox rmi [-f] IMAGE..."""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import output, settings
from hpcbox.errors import EXIT_OK, HpcboxError, describe
from hpcbox.store import lookup

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox.store import Store


def _remove_one(store: Store, text: str, force: bool) -> None:
    image = lookup.find(store, text)
    if image.source is not None:
        raise HpcboxError(f"image {text} is in the read-only image store {image.source.home}, which rmi "
                          f"never changes", "ask its admins to remove it, or drop it from HPCBOX_IMAGES", 1)
    from hpcbox.store.protect import is_image_protected

    if is_image_protected(store, image):
        raise HpcboxError(f"image {text} is protected", f"run 'hpcbox unprotect {text}' first", 1)
    names = []
    try:
        names = lookup.canonical_names(text)
    except Exception:
        pass
    named = next((n for n in names if n in image.names), None)
    if named is not None:
        _, removed = store.untag(named)
        sys.stdout.write(f"Untagged: {named}\n")
        if removed:
            sys.stdout.write(f"Deleted: {image.id}\n")
        return
    if len(image.tags) > 1 and not force:
        raise HpcboxError(f"image {text} has {len(image.tags)} names ({', '.join(image.tags)})",
                          "remove them by name, or use 'hpcbox rmi -f'", 1)
    store.delete(image.manifest_digest)
    for name in image.names:
        sys.stdout.write(f"Untagged: {name}\n")
    sys.stdout.write(f"Deleted: {image.id}\n")


def run(args: Namespace) -> int:
    store = settings.store(args)
    code = EXIT_OK
    for text in args.images:
        try:
            _remove_one(store, text, args.force)
        except Exception as exc:  # report each failure, go on with the others
            message, code = describe(exc)
            sys.stderr.write(f"hpcbox: error: {message}\n")
    removed = store.gc()
    from hpcbox.containers import ContainerStore
    from hpcbox.containers.overlay import clean_image_rootfs

    clean_image_rootfs(store, ContainerStore(store))  # image rootfs trees nothing refers to any more
    if removed is None:
        sys.stderr.write("hpcbox: note: a pull or create is running; unused blobs will be removed by a later "
                         "rmi or prune\n")
    elif store.gc_held_by:
        from hpcbox.store.layout import gc_held_note

        sys.stderr.write(gc_held_note(store.gc_held_by))
    elif removed:
        freed = sum(size for _, size in removed)
        sys.stderr.write(f"Freed {output.human_size(freed)} in {len(removed)} blobs\n")
    return code
