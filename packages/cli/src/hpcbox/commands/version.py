"""hpcbox version [--json]: versions of hpcbox, its packages and Python."""

from __future__ import annotations

import platform
import sys
from argparse import Namespace
from typing import Dict, Optional

from hpcbox import output
from hpcbox.__about__ import __version__

PACKAGES = ("hpcbox-registry", "hpcbox-layers", "hpcbox-engine-runc", "hpcbox-engine-ptrace",
            "hpcbox-engine-preload", "hpcbox-engine-singularity")


def versions() -> Dict[str, Optional[str]]:
    from importlib import metadata

    found: Dict[str, Optional[str]] = {"hpcbox": __version__}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    return found


def run(args: Namespace) -> int:
    info = versions()
    if args.json:
        output.print_json(info)
    else:
        for name, version in info.items():
            sys.stdout.write(f"{name:28} {version or 'not installed'}\n")
    return 0
