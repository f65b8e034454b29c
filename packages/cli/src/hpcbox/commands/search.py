"""hpcbox search [--limit N] [REGISTRY/]TERM"""

from __future__ import annotations

from hpcbox import output, settings
from hpcbox.errors import UsageError


def run(args) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit {args.limit} is not positive", "give --limit 1 or more")
    with settings.client(args) as client:
        results = client.search(args.term, limit=args.limit)
    rows = []
    for r in results:
        description = " ".join((getattr(r, "description", "") or "").split())
        rows.append([getattr(r, "name", ""), description[:60], str(getattr(r, "stars", "") or 0),
                     "[OK]" if getattr(r, "official", False) else ""])
    output.table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL"], rows)
    return 0
