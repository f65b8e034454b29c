"""hpcbox save [--format docker|oci] -o FILE IMAGE...: write images as a docker-archive or an OCI archive."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from argparse import Namespace

from hpcbox import settings
from hpcbox.errors import UsageError


def run(args: Namespace) -> int:
    from hpcbox.store import lookup
    from hpcbox.store import save as images

    if not args.output:
        raise UsageError("no output file given", "use 'hpcbox save -o FILE IMAGE' ('-o -' for stdout)")
    store = settings.store(args)
    chosen = []
    for text in args.images:
        image = lookup.find(store, text)
        wanted = []
        with contextlib.suppress(Exception):
            wanted = lookup.canonical_names(text)
        chosen.append((image, images.names_for_save(image, wanted)))
    if args.output == "-":
        if sys.stdout.isatty():
            raise UsageError("refusing to write a tar to a terminal", "redirect stdout or use -o FILE")
        sys.stdout.flush()
        with os.fdopen(os.dup(1), "wb") as out:
            images.save_archive(store, chosen, out, args.format)
        return 0
    target = os.path.abspath(args.output)
    fd, tmp = tempfile.mkstemp(prefix=".hpcbox-save-", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as out:
            images.save_archive(store, chosen, out, args.format)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return 0
