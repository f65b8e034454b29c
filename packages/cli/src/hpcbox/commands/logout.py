"""hpcbox logout REGISTRY"""

from __future__ import annotations

import sys

from hpcbox import settings
from hpcbox.commands.login import normalize_registry
from hpcbox.errors import HpcboxError


def run(args) -> int:
    registry = normalize_registry(args.registry)
    if not settings.credentials(args).remove(registry):
        raise HpcboxError(f"not logged in to {registry} with hpcbox",
                          "nothing to do (credentials in ~/.docker/config.json are left alone)")
    sys.stdout.write(f"Removed login credentials for {registry}\n")
    return 0
