"""hpcbox rm [-f] CONTAINER...: remove containers (protected ones are refused)."""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import settings
from hpcbox.errors import EXIT_OK, describe


def run(args: Namespace) -> int:
    from hpcbox.containers import ContainerStore

    cs = ContainerStore(settings.store(args))
    code = EXIT_OK
    for text in args.containers:
        try:
            c = cs.remove(text, force=args.force)
            sys.stdout.write(c.id + "\n")
        except Exception as exc:  # report each failure, go on with the others
            message, code = describe(exc)
            sys.stderr.write(f"hpcbox: error: {message}\n")
    return code
