"""hpcbox verify [--repair] IMAGE...: check every blob's digest and size and the config's diff_ids;
with --repair, remove the damaged blobs and fetch them again (a pull by the image's digest), which
repairs every image that shares them too."""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import List

from hpcbox import settings
from hpcbox.errors import EXIT_INTEGRITY, EXIT_OK, describe

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox.store import Image, Store


def _repair(args: Namespace, store: Store, image: Image, damaged: List[str]) -> None:
    from hpcbox.commands.create import pull_by_name

    for digest in dict.fromkeys(damaged):
        store.discard_damaged(digest)
    names = image.digests + image.tags
    if not names:
        from hpcbox.errors import HpcboxError

        raise HpcboxError(f"image {image.id} has no name to pull it by",
                          "load it again from its archive with 'hpcbox load -i FILE'", EXIT_INTEGRITY)
    pull_by_name(args, store, names[0])


def run(args: Namespace) -> int:
    from hpcbox.store import lookup
    from hpcbox.store import verify as images

    store = settings.store(args)
    code = EXIT_OK
    for text in args.images:
        try:
            image = lookup.find(store, text)
            damaged: List[str] = []
            problems = images.verify_image(store, image, damaged)
            if problems and getattr(args, "repair", False):
                for problem in problems:
                    sys.stderr.write(f"{text}: {problem}\n")
                sys.stderr.write(f"{text}: repairing {len(set(damaged))} blobs\n")
                _repair(args, store, image, damaged)
                image = lookup.find(store, text)
                problems = images.verify_image(store, image)
                if not problems:
                    sys.stdout.write(f"{text}: repaired\n")
                    continue
        except Exception as exc:
            message, code = describe(exc)
            sys.stderr.write(f"hpcbox: error: {message}\n")
            continue
        for problem in problems:
            sys.stderr.write(f"{text}: {problem}\n")
        if problems:
            sys.stderr.write(f"hpcbox: error: image {text} is damaged ({len(problems)} problems); "
                             f"repair it with 'hpcbox verify --repair {text}'\n")
            code = EXIT_INTEGRITY
        else:
            sys.stdout.write(f"{text}: OK\n")
    return code
