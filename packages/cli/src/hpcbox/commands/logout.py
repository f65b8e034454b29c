"""hpcbox logout [-a] [REGISTRY]"""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import settings
from hpcbox.commands.login import normalize_registry
from hpcbox.errors import HpcboxError


def run(args: Namespace) -> int:
    if getattr(args, "all", False):
        return _all(args)
    registry = normalize_registry(getattr(args, "registry_option", None) or args.registry or "docker.io")
    if not settings.credentials(args).remove(registry):
        raise HpcboxError(f"not logged in to {registry} with hpcbox",
                          "nothing to do (credentials in ~/.docker/config.json are left alone)")
    sys.stdout.write(f"Removed login credentials for {registry}\n")
    return 0


def _all(args: Namespace) -> int:
    """``-a``: forget every registry hpcbox stored credentials for (Docker's file is left alone)."""
    import json

    path = settings.directory_home(args) / "credentials.json"
    try:
        auths = json.loads(path.read_text()).get("auths") or {}
    except FileNotFoundError:
        auths = {}
    except (OSError, ValueError, AttributeError) as exc:
        raise HpcboxError(f"cannot read {path} ({exc})", "fix or remove that file") from None
    store = settings.credentials(args)
    for registry in sorted(auths):
        store.remove(registry)
        sys.stdout.write(f"Removed login credentials for {registry}\n")
    return 0
