"""The `hpcbox` command: argparse and dispatch. Heavy modules are imported only by the chosen command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from hpcbox.__about__ import __version__


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``hpcbox: error: <problem>; see 'hpcbox CMD -h'``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"hpcbox: error: {message}; see '{self.prog} -h'\n")


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options accepted before or after the command (SUPPRESS keeps the main parser's value)."""
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("store and registry options")
    group.add_argument("--home", metavar="DIR", default=default,
                       help="store directory (default: $HPCBOX_HOME or ~/.hpcbox)")
    group.add_argument("--insecure-registry", metavar="HOST", action="append",
                       default=[] if top else argparse.SUPPRESS,
                       help="allow plain http to HOST (repeatable; env HPCBOX_INSECURE_REGISTRIES)")
    group.add_argument("--ca-bundle", metavar="FILE", default=default,
                       help="extra CA certificates for TLS registries (env HPCBOX_CA_BUNDLE)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpcbox", description="Run Docker/OCI containers on HPC systems without root, "
                     "daemon or administrator.")
    parser.add_argument("--version", action="version", version=f"hpcbox {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, module: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _common(p, top=False)
        p.set_defaults(handler=module)
        return p

    p = command("pull", "pull", "download an image from a registry into the store")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pull (default: this host)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("image", metavar="IMAGE[:TAG|@DIGEST]")

    p = command("images", "images", "list the images in the store")
    p.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    p.add_argument("-q", "--quiet", action="store_true", help="print image ids only")

    p = command("inspect", "inspect", "show an image's config and manifest as JSON")
    p.add_argument("-f", "--format", metavar="TEMPLATE",
                   help="print only the fields named like {{.Config.config.Env}}")
    p.add_argument("image", metavar="IMAGE")

    p = command("rmi", "rmi", "remove images (their blobs go when no image needs them)")
    p.add_argument("-f", "--force", action="store_true", help="remove an image that has several names by id")
    p.add_argument("images", metavar="IMAGE", nargs="+")

    p = command("tag", "tag", "give an image another name")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("target", metavar="TARGET")

    p = command("login", "login", "store credentials for a registry (verified first)")
    p.add_argument("-u", "--username", metavar="USER")
    pw = p.add_mutually_exclusive_group()
    pw.add_argument("-p", "--password", metavar="PASS")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("registry", metavar="REGISTRY", nargs="?", default="docker.io")

    p = command("logout", "logout", "forget the credentials of a registry")
    p.add_argument("registry", metavar="REGISTRY", nargs="?", default="docker.io")

    p = command("search", "search", "search a registry's index (Docker Hub style /v1/search)")
    p.add_argument("--limit", type=int, default=25, help="at most this many results (default 25)")
    p.add_argument("term", metavar="[REGISTRY/]TERM")

    p = command("manifest", "manifest", "remote manifests")
    msub = p.add_subparsers(dest="manifest_command", metavar="SUBCOMMAND", parser_class=_Parser)
    mi = msub.add_parser("inspect", help="print an image's manifest or index from its registry as JSON",
                         description="print an image's manifest or index from its registry as JSON")
    _common(mi, top=False)
    mi.add_argument("--raw", action="store_true", help="print the bytes exactly as served")
    mi.add_argument("image", metavar="IMAGE")

    p = command("version", "version", "print versions of hpcbox and its packages")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    target = getattr(args, "handler", None)
    if target is None:
        parser.print_help(sys.stderr)
        return 2
    if target == "manifest" and not getattr(args, "manifest_command", None):
        parser.exit(2, "hpcbox: error: missing subcommand; use 'hpcbox manifest inspect IMAGE'\n")
    import importlib

    try:
        module = importlib.import_module(f"hpcbox.commands.{target}")
        return int(module.run(args) or 0)
    except KeyboardInterrupt as exc:
        _report(exc)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # do not wait for download threads; the store is consistent at any point
    except SystemExit:
        raise
    except BaseException as exc:
        if os.environ.get("HPCBOX_DEBUG") == "1":
            raise
        return _report(exc)


def _report(exc: BaseException) -> int:
    from hpcbox.errors import describe

    message, code = describe(exc)
    try:
        sys.stdout.flush()
    except OSError:
        pass
    sys.stderr.write(f"hpcbox: error: {message}\n")
    sys.stderr.flush()
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
