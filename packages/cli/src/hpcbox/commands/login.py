"""hpcbox login [-u USER] [-p PASS | --password-stdin] REGISTRY"""

from __future__ import annotations

import sys
from argparse import Namespace

from hpcbox import settings
from hpcbox.errors import UsageError


def normalize_registry(text: str) -> str:
    """``https://Host:5000/`` -> ``host:5000``; Docker Hub's many names -> ``docker.io``."""
    host = text.strip()
    for scheme in ("https://", "http://"):
        if host.lower().startswith(scheme):
            host = host[len(scheme):]
    host = host.split("/", 1)[0].lower()
    if not host:
        raise UsageError(f"bad registry {text!r}", "give a host name such as registry.example.org:5000")
    if host in ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        return "docker.io"
    return host


def _read_password(args: Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if args.password is not None:
        return str(args.password)
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("Password: ")
    raise UsageError("no password given", "use -p PASS or --password-stdin")


def run(args: Namespace) -> int:
    registry = normalize_registry(getattr(args, "registry_option", None) or args.registry or "docker.io")
    username = args.username
    if not username:
        if not sys.stdin.isatty() or args.password_stdin:
            raise UsageError("no user name given", "use -u USER")
        username = input("Username: ").strip()
    password = _read_password(args)
    if not password:
        raise UsageError("empty password", "give the password with -p or --password-stdin")
    credentials = settings.credentials(args)  # a bad store is named before the registry is asked
    with settings.client(args) as client:
        client.login(registry, username, password)
    credentials.set(registry, username, password)
    sys.stdout.write(f"Login succeeded for {username} at {registry}\n")
    return 0
