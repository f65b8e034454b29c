"""hpcbox search [--limit N] [REGISTRY/]TERM"""

from __future__ import annotations

from argparse import Namespace

from hpcbox import output, settings
from hpcbox.errors import UsageError


def run(args: Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit} is not positive", "give --limit 1 or more")
    from hpcbox import udocker

    term = udocker.with_registry(args.term, getattr(args, "registry_url", None))
    if getattr(args, "list_tags", False):
        with settings.client(args) as client:
            tags = client.list_tags(settings.parse_reference(term))
        for tag in tags:
            print(tag)
        return 0
    with settings.client(args) as client:
        results = client.search(term, limit=args.limit)
    rows = []
    for r in results:
        description = " ".join((getattr(r, "description", "") or "").split())
        rows.append([getattr(r, "name", ""), description[:60], str(getattr(r, "stars", "") or 0),
                     "[OK]" if getattr(r, "official", False) else ""])
    output.table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL"], rows)
    return 0
