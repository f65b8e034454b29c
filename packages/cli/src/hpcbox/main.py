"""The `hpcbox` command: argparse and dispatch. Heavy modules are imported only by the chosen command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, List, Optional

from hpcbox import udocker
from hpcbox.__about__ import __version__


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized without importing shutil (argparse imports it for every parser it
    builds just to read the terminal width: ~2 ms of each `hpcbox run`)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: Optional[int] = None) -> None:
        if width is None:
            env = os.environ.get("COLUMNS", "")
            columns = int(env) if env.isdigit() else 0
            if not columns:
                try:
                    columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
                except (AttributeError, ValueError, OSError):  # (AttributeError: no __stdout__)
                    columns = 80
            width = max(columns, 24) - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``hpcbox: error: <problem>; see 'hpcbox CMD -h'``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"hpcbox: error: {message}; see '{self.prog} -h'\n")


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options accepted before or after the command (SUPPRESS keeps the main parser's value)."""
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("store and registry options")
    group.add_argument("--home", "--repo", dest="home", metavar="DIR", default=default,
                       help="store directory (default: $HPCBOX_HOME, $UDOCKER_DIR or ~/.hpcbox); --repo is "
                            "udocker's name")
    group.add_argument("--insecure-registry", metavar="HOST", action="append",
                       default=[] if top else argparse.SUPPRESS,
                       help="allow plain http to HOST (repeatable; env HPCBOX_INSECURE_REGISTRIES)")
    group.add_argument("--ca-bundle", metavar="FILE", default=default,
                       help="extra CA certificates for TLS registries (env HPCBOX_CA_BUNDLE)")


class _Unused:
    """Stands for the parser of a command that is not being run. Building all of them costs ~20 ms
    (argparse looks up translations for each), a third of the start budget of `hpcbox run`."""

    def __getattr__(self, name: str) -> Callable[..., _Unused]:
        return lambda *args, **kwargs: self


_Command = Callable[[str, str, str], argparse.ArgumentParser]  # build_parser's command(name, module, help)
_VALUED = ("--home", "--repo", "--insecure-registry", "--ca-bundle", "--config")  # options with a value


def _command_in(argv: Optional[List[str]]) -> Optional[str]:
    """The command word of *argv*, or None when the whole parser is needed (help, version, none)."""
    words = sys.argv[1:] if argv is None else argv
    for i, word in enumerate(words):
        if word in ("-h", "--help", "--version", "-V"):
            return None
        if not word.startswith("-") and (i == 0 or words[i - 1] not in _VALUED):
            return word
    return None


def build_parser(argv: Optional[List[str]] = None, *, full: bool = True,
                 prog: str = "hpcbox") -> argparse.ArgumentParser:
    """The parser; with ``full=False`` only the command named in *argv* gets its real sub-parser."""
    only = None if full else _command_in(argv)
    parser = _Parser(prog=prog, description="Run Docker/OCI containers on HPC systems without root, "
                     "daemon or administrator.")
    parser.add_argument("-V", "--version", action="version", version=f"hpcbox {__version__}")
    _common(parser, top=True)
    udocker.global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.commands = []  # type: ignore[attr-defined]  # every command name, for "did you mean"

    def command(name: str, module: str, help: str) -> argparse.ArgumentParser:
        parser.commands.append(name)  # type: ignore[attr-defined]
        if only is not None and name != only:
            return _Unused()  # type: ignore[return-value]
        p = sub.add_parser(name, help=help, description=help)
        _common(p, top=False)
        p.set_defaults(handler=module)
        return p

    p = command("pull", "pull", "download an image from a registry into the store")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pull (default: this host)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _progress_option(p)
    udocker.registry_options(p)
    p.add_argument("image", metavar="IMAGE[:TAG|@DIGEST]")

    p = command("images", "images", "list the images in the store")
    p.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    p.add_argument("-q", "--quiet", action="store_true", help="print image ids only")
    p.add_argument("-l", "--long", action="store_true", help="also list each image's layers (udocker's -l)")

    p = command("inspect", "inspect", "show an image's (or a container's) config and metadata as JSON")
    p.add_argument("-f", "--format", metavar="TEMPLATE",
                   help="print only the fields named like {{.Config.config.Env}}")
    p.add_argument("-p", "--path", action="store_true",
                   help="print the container's root directory on the host (udocker's -p)")
    p.add_argument("--type", choices=("image", "container"), help="look only for this kind of object")
    p.add_argument("image", metavar="IMAGE|CONTAINER")

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
    p.add_argument("--registry", dest="registry_option", metavar="REGISTRY", help="udocker's way to name it")
    p.add_argument("registry", metavar="REGISTRY", nargs="?", default=None)

    p = command("logout", "logout", "forget the credentials of a registry")
    p.add_argument("-a", "--all", action="store_true", help="forget the credentials of every registry")
    p.add_argument("--registry", dest="registry_option", metavar="REGISTRY", help="udocker's way to name it")
    p.add_argument("registry", metavar="REGISTRY", nargs="?", default=None)

    p = command("search", "search", "search a registry's index (Docker Hub style /v1/search)")
    p.add_argument("--limit", type=int, default=25, help="at most this many results (default 25)")
    p.add_argument("--list-tags", action="store_true", help="list the tags of the repository TERM instead")
    udocker.accept(p, "-a", "--no-trunc")  # udocker: no paging, no truncation; hpcbox never pages
    udocker.registry_options(p)
    p.add_argument("term", metavar="[REGISTRY/]TERM")

    p = command("manifest", "manifest", "remote manifests")
    msub = p.add_subparsers(dest="manifest_command", metavar="SUBCOMMAND", parser_class=_Parser)
    mi = msub.add_parser("inspect", help="print an image's manifest or index from its registry as JSON",
                         description="print an image's manifest or index from its registry as JSON")
    _common(mi, top=False)
    mi.add_argument("--raw", action="store_true", help="print the bytes exactly as served")
    mi.add_argument("image", metavar="IMAGE")

    _lifecycle_commands(command)

    _run_commands(command)

    p = command("version", "version", "print versions of hpcbox and its packages")
    p.add_argument("--json", action="store_true")

    p = command("help", "help", "show the help of hpcbox or of a command")
    p.add_argument("topic", metavar="COMMAND", nargs="*")

    p = command("install", "install", "udocker's tool download: nothing to do (the engines come with hpcbox)")
    udocker.accept(p, "--force", "--purge", "--upgrade")

    p = command("showconf", "info", "udocker's name for 'hpcbox info'")
    p.set_defaults(json=False)
    if only is not None and only not in sub.choices:
        return build_parser(argv, prog=prog)  # an unknown command: the full parser lists the valid ones
    return parser


def _lifecycle_commands(command: _Command) -> None:
    """The container lifecycle and image archive commands (udocker's names and options)."""
    p = command("create", "create", "extract an image into a new container (pulls the image if missing)")
    p.add_argument("--name", metavar="NAME", help="a name for the container")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                   help="platform of the image (default: this host)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output when pulling")
    _progress_option(p)
    p.add_argument("--overlay", action="store_true",
                   help="an overlay over the image's shared rootfs instead of a copy (Linux 5.11+; "
                        "default: $HPCBOX_CREATE_MODE)")
    udocker.refuse(p, "--force", fix="a name belongs to one container: free it with 'hpcbox rmname NAME'")
    p.add_argument("image", metavar="IMAGE")

    p = command("ps", "ps", "list the containers")
    p.add_argument("--json", action="store_true", help="print a JSON list for scripts")
    p.add_argument("-q", "--quiet", action="store_true", help="print container ids only")
    p.add_argument("-s", "--size", action="store_true", help="show the disk usage of each container")
    p.add_argument("-m", "--mode", action="store_true", help="udocker's: the MODE column is always shown")

    p = command("rm", "rm", "remove containers (protected ones are refused)")
    p.add_argument("-f", "--force", action="store_true", help="remove even if a process uses it")
    p.add_argument("containers", metavar="CONTAINER", nargs="+")

    p = command("name", "name", "give a container a name")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("name", metavar="NAME")

    p = command("rmname", "rmname", "remove a container's name (the container stays)")
    p.add_argument("name", metavar="NAME")

    p = command("rename", "rename", "rename a container")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")

    p = command("clone", "clone", "copy a container into a new one")
    p.add_argument("--name", metavar="NAME", help="a name for the new container")
    p.add_argument("container", metavar="CONTAINER")

    p = command("export", "export", "write a container's root filesystem as a tar")
    p.add_argument("-o", "--output", metavar="FILE", help="the tar file ('-' or none: stdout)")
    p.add_argument("--clone", action="store_true",
                   help="the whole container (settings too) for 'import --clone' (udocker's clone format)")
    p.add_argument("container", metavar="[-] CONTAINER", nargs="+")

    p = command("import", "import_image", "make a single-layer image (or a container) from a rootfs tar")
    p.add_argument("--tocontainer", action="store_true", help="make a container directly, no image")
    p.add_argument("--clone", action="store_true", help="a container from 'export --clone' (settings kept)")
    p.add_argument("--name", metavar="NAME", help="with --tocontainer or --clone: a name for the container")
    udocker.accept(p, "--mv")  # udocker: move the tar into its store; hpcbox always reads it
    p.add_argument("file", metavar="FILE", help="tar, tar.gz or tar.zst of a root filesystem ('-' for stdin)")
    p.add_argument("image", metavar="IMAGE[:TAG]", nargs="?", help="the image to make (not with --clone; "
                   "optional with --tocontainer)")

    p = command("load", "load", "load images from a docker-archive or OCI archive tar")
    p.add_argument("-i", "--input", metavar="FILE", help="the archive ('-' for stdin)")
    p.add_argument("operands", metavar="[-] [NAME]", nargs="*",
                   help="udocker's forms: '-' reads stdin; NAME names the one image loaded")

    p = command("save", "save", "write images as a docker-archive (default) or an OCI archive")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the tar file ('-' for stdout)")
    p.add_argument("--format", choices=("docker", "oci"), default="docker", help="archive format")
    p.add_argument("images", metavar="IMAGE", nargs="+")

    p = command("verify", "verify", "check an image's blobs (digests, sizes) and its layers' diff_ids")
    p.add_argument("--repair", action="store_true",
                   help="remove damaged blobs and fetch them again from the image's registry")
    p.add_argument("images", metavar="IMAGE", nargs="+")

    for verb, text in (("protect", "protect an image or container against rm/rmi"),
                       ("unprotect", "allow removing an image or container again")):
        p = command(verb, "protect", text)
        p.add_argument("target", metavar="IMAGE|CONTAINER")

    p = command("prune", "prune", "remove unused blobs and leftovers of interrupted pulls and creates")
    p.add_argument("--containers", action="store_true",
                   help="also remove every container that is neither protected nor in use")

    p = command("mkrepo", "mkrepo", "create an empty store in DIR (use it with --home DIR)")
    p.add_argument("directory", metavar="DIR")


RUN_AS_HELP = (
    "Who runs: by default the container's root (uid 0, HOME=/root, the image's working directory and "
    "environment, nothing bound but -v), which may install packages (apt-get, dpkg, useradd). "
    "--as-me runs as you instead: your uid/gid, your environment, your $HOME and $PWD bound at their "
    "own paths, starting in $PWD (Apptainer's habits). Make --as-me the default with \"run_as\": \"me\" "
    "in ~/.hpcbox/config.json (or HPCBOX_RUN_AS=me); --as-root switches back for one run. "
    "'hpcbox info' shows the current default.")


def _run_commands(command: _Command) -> None:
    """run, setup and info: running containers and choosing engines."""
    p = command("run", "run", "run a command in a container (an image becomes a new container first)")
    _progress_option(p)
    udocker.run_options(p)
    p.add_argument("--rm", action="store_true", help="remove the container afterwards (also on failure)")
    p.add_argument("--overlay", action="store_true",
                   help="a new container is an overlay over the image's shared rootfs (see create)")
    p.add_argument("--name", metavar="NAME", help="name of the container created from an image")
    p.add_argument("--pull", choices=("missing", "never", "always"), default="missing",
                   help="pull the image: when missing (default), never, always")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="image platform (default: this host)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output when pulling")
    p.add_argument("-v", "--volume", metavar="HOST[:CONTAINER[:ro]]", action="append", default=[],
                   help="bind a host path into the container (repeatable)")
    p.add_argument("-e", "--env", metavar="NAME[=VALUE]", action="append", default=[],
                   help="set an environment variable (NAME alone: the host's value)")
    p.add_argument("--env-file", metavar="FILE", action="append", default=[], help="read NAME=value lines")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory in the container")
    p.add_argument("-u", "--user", metavar="NAME|UID[:GID]", help="user in the container")
    p.add_argument("--entrypoint", metavar="CMD", help="replace the image's ENTRYPOINT ('' clears it)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--as-me", dest="run_as", action="store_const", const="me",
                     help="run as you: your uid/gid, your environment, $HOME and $PWD bound, start in $PWD")
    who.add_argument("--as-root", dest="run_as", action="store_const", const="root",
                     help="run as the container's root (uid 0, HOME=/root): the default unless set otherwise")
    p.add_argument("--hostenv", action="store_true", help="pass the host environment to the container")
    p.add_argument("--no-batch-env", dest="batchenv", action="store_false", help=
                   "keep the host's OMPI_*, PMIX_*, PMI_*, SLURM_*, PBS_* variables out (passed by default)")
    p.add_argument("--hostauth", action="store_true", help="bind the host's /etc/passwd and /etc/group")
    p.add_argument("--containerauth", action="store_true",
                   help="use the container's /etc/passwd and /etc/group as they are")
    p.add_argument("--bindhome", action="store_true", help="bind your home directory into the container")
    p.add_argument("--nosysdirs", action="store_true", help="no host /etc/resolv.conf, /etc/hosts")
    p.add_argument("--hostname", metavar="NAME", help="host name in the container")
    p.add_argument("--cpuset-cpus", metavar="LIST", help="CPUs the container may use, e.g. 0-3,6")
    p.add_argument("--engine", metavar="ENGINE",
                   help="auto (default), runc, ptrace, preload, singularity; see 'hpcbox info'")
    p.add_argument("--runtime", choices=("builtin", "runc", "crun"), help="runc engine: who runs the bundle")
    p.add_argument("--net", choices=("host", "none"), default="host", help="network: host (default) or none")
    p.add_argument("--gpus", metavar="all|N[,M]",
                   help="make the host's NVIDIA driver and GPUs visible: all, or GPU indices (sets "
                        "CUDA_VISIBLE_DEVICES)")
    p.add_argument("--nv", dest="gpus", action="store_const", const="all", help="the same as --gpus all")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached (always the case)")
    p.add_argument("-t", "--tty", action="store_true", help="the container uses your terminal")
    p.add_argument("target", metavar="IMAGE|CONTAINER", nargs="?")
    p.add_argument("command", metavar="COMMAND [ARG...]", nargs=argparse.REMAINDER)
    p.epilog = RUN_AS_HELP

    p = command("setup", "setup", "choose how a container runs (udocker's execution modes)")
    p.add_argument("--execmode", metavar="MODE", help="P1, P2, F1-F4, R1-R3 or S1 (docs/udocker-mapping.md)")
    nv = p.add_mutually_exclusive_group()
    nv.add_argument("--nvidia", action="store_true",
                    help="copy the host's NVIDIA driver libraries and tools into the container "
                         "(again: refresh)")
    nv.add_argument("--no-nvidia", action="store_true", help="remove what --nvidia copied")
    p.add_argument("--purge", action="store_true", help="remove what hpcbox wrote into the container "
                   "directory to run it (config.json, etc/ copies), never the rootfs")
    p.add_argument("--fixperm", action="store_true",
                   help="give the owner read/write (and search on directories) on every file of the rootfs")
    udocker.accept(p, "--force")  # udocker: force a mode change; hpcbox's modes change nothing on disk
    p.add_argument("container", metavar="CONTAINER")

    p = command("info", "info", "show which engines work here, why, and what auto picks")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def _progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", choices=("auto", "bars", "lines", "none"), default=None,
                   help="pull progress: auto (default, $HPCBOX_PROGRESS): bars on a terminal, nothing "
                        "otherwise; lines: one line per layer (for logs)")


def udocker_main() -> int:
    """The ``hpcbox-udocker`` entry point: hpcbox under udocker's name (link it as ``udocker``)."""
    return main(prog="udocker")


def main(argv: Optional[List[str]] = None, prog: Optional[str] = None) -> int:
    if prog is None:
        prog = "udocker" if os.path.basename(sys.argv[0]) in ("udocker", "hpcbox-udocker") else "hpcbox"
    parser = build_parser(argv, full=False, prog=prog)
    word = _command_in(argv)
    if word is not None and word not in parser.commands:  # type: ignore[attr-defined]
        parser.exit(2, f"hpcbox: error: {udocker.unknown_command(word, parser.commands)}\n")  # type: ignore
    args = parser.parse_args(argv)
    udocker.apply_globals(args)
    target = getattr(args, "handler", None)
    if target is None:  # udocker with no command: a short usage, success
        sys.stdout.write(udocker.short_usage(parser))
        return 0
    if target == "help":
        full = build_parser(None, prog=prog)
        full.parse_args([*args.topic[:1], "-h"])  # exits 0 after printing the help
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
