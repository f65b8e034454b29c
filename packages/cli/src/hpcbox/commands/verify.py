"""hpcbox verify IMAGE...: check every blob's digest and size and the config's diff_ids."""

from __future__ import annotations

import sys

from hpcbox import settings
from hpcbox.errors import EXIT_INTEGRITY, EXIT_OK, describe


def run(args) -> int:
    from hpcbox.commands import _local
    from hpcbox.containers import images

    store = settings.store(args)
    code = EXIT_OK
    for text in args.images:
        try:
            image = _local.find(store, text)
        except Exception as exc:
            message, code = describe(exc)
            sys.stderr.write(f"hpcbox: error: {message}\n")
            continue
        problems = images.verify_image(store, image)
        for problem in problems:
            sys.stderr.write(f"{text}: {problem}\n")
        if problems:
            sys.stderr.write(f"hpcbox: error: image {text} is damaged ({len(problems)} problems); "
                             f"remove it with 'hpcbox rmi' and pull it again\n")
            code = EXIT_INTEGRITY
        else:
            sys.stdout.write(f"{text}: OK\n")
    return code
