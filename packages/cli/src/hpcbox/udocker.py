"""udocker's command line on hpcbox: its global options, its environment variables, its program name.

udocker's syntax is ``udocker [GLOBAL OPTIONS] COMMAND [COMMAND OPTIONS] ARGS``; hpcbox accepts the same
placement. Options that have no meaning here are either accepted (when ignoring them changes nothing
for the caller) or refused with one line that names what to use instead (:class:`Refused`).

Imported by every `hpcbox` start: only the standard library's cheapest modules.
"""

from __future__ import annotations

import os
import sys

from hpcbox.errors import UsageError

TYPE_CHECKING = False  # argparse and typing are imported only where parsers are built: `hpcbox run
if TYPE_CHECKING:  # CONTAINER` (hpcbox.quick) calls this module's run-time helpers without them
    import argparse
    from typing import Any, ContextManager, Dict, Iterable, List, Optional, Sequence, TextIO, Type, Union

_REFUSED: List[Type[argparse.Action]] = []  # the Refused class, once made


def _refused_action() -> Type[argparse.Action]:
    """:class:`Refused`, made when a parser first needs it (argparse costs ~5 ms to import)."""
    if not _REFUSED:
        import argparse

        class Refused(argparse.Action):
            """An option udocker has and hpcbox does not: a one-line usage error with the alternative."""

            def __init__(self, option_strings: Sequence[str], dest: str, fix: str = "",
                         **kwargs: Any) -> None:
                self.fix = fix
                kwargs.setdefault("nargs", 0)
                kwargs.setdefault("default", argparse.SUPPRESS)
                super().__init__(option_strings, dest, **kwargs)

            def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                         option_string: Optional[str] = None) -> None:
                parser.error(f"{option_string} (udocker's) has no hpcbox equivalent: {self.fix}")

        _REFUSED.append(Refused)
    return _REFUSED[0]


def __getattr__(name: str) -> Type[argparse.Action]:
    if name == "Refused":
        return _refused_action()
    raise AttributeError(f"module 'hpcbox.udocker' has no attribute {name!r}")


def refuse(parser: Union[argparse.ArgumentParser, argparse._ArgumentGroup], *flags: str, fix: str,
           value: bool = False) -> None:
    """Declare udocker's *flags* on *parser*, refused with *fix* (``value``: the option takes one)."""
    import argparse

    parser.add_argument(*flags, action=_refused_action(), fix=fix, nargs=1 if value else 0,
                        help=argparse.SUPPRESS)


def accept(parser: argparse.ArgumentParser, *flags: str, value: bool = False, help: Optional[str] = None,
           **kwargs: Any) -> None:
    """Declare udocker's *flags* that change nothing here (kept so that scripts run unchanged)."""
    import argparse

    if help is None:
        help = argparse.SUPPRESS
    if value:
        parser.add_argument(*flags, metavar="X", help=help, **kwargs)
    else:
        parser.add_argument(*flags, action="store_true", help=help, **kwargs)


def global_options(parser: argparse.ArgumentParser) -> None:
    """udocker's options before the command (``udocker --quiet run ...``)."""
    group = parser.add_argument_group("udocker's global options (before the command)")
    group.add_argument("-q", "--quiet", dest="global_quiet", action="store_true",
                       help="only errors on stderr: no progress, notes or warnings")
    group.add_argument("-D", "--debug", dest="global_debug", action="store_true",
                       help="a traceback with each error (as HPCBOX_DEBUG=1)")
    group.add_argument("--insecure", dest="global_insecure", action="store_true",
                       help="allow plain http and unverified TLS to the registry named on the command line")
    group.add_argument("--allow-root", dest="global_allow_root", action="store_true",
                       help="accepted: hpcbox's engines run as root as well as as any user")
    refuse(group, "--config", value=True, fix="hpcbox reads <home>/config.json (insecure_registries, "
           "ca_bundle, mirrors); see 'hpcbox info'")


class ErrorsOnly:
    """``-q``: hpcbox's own stderr keeps only its error lines (the container's stderr is its own file
    descriptor and is never touched)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.startswith("hpcbox: error"):
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending.startswith("hpcbox: error"):
            self.stream.write(self.pending)
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name: str) -> Any:  # anything else of the stream it stands for
        return getattr(self.stream, name)


def _loglevel_quiet() -> bool:
    """UDOCKER_LOGLEVEL 0-2 means: errors (and the command's output) only."""
    level = os.environ.get("UDOCKER_LOGLEVEL", "").strip()
    return level.isdigit() and int(level) <= 2


def apply_globals(args: Any) -> None:
    """Act on the global options once the command line is parsed."""
    if getattr(args, "global_debug", False):
        os.environ["HPCBOX_DEBUG"] = "1"
    debug = getattr(args, "global_debug", False)
    quiet = getattr(args, "global_quiet", False) or (_loglevel_quiet() and not debug)
    if quiet:
        args.global_quiet = True
        if getattr(args, "handler", None) in ("pull", "create", "run"):
            args.quiet = True  # images -q and ps -q mean "ids only": left alone
        if not isinstance(sys.stderr, ErrorsOnly):
            sys.stderr = ErrorsOnly(sys.stderr)
    if getattr(args, "global_insecure", False):
        host = _registry_named(args)
        if host:
            args.insecure_registry = [*(getattr(args, "insecure_registry", None) or []), host]


def _registry_named(args: Any) -> Optional[str]:
    """The registry host of the image (or registry) the command names, for ``--insecure``."""
    handler = getattr(args, "handler", None)
    if handler in ("login", "logout"):
        registry = getattr(args, "registry_option", None) or getattr(args, "registry", None)
        return registry.split("://", 1)[-1].split("/", 1)[0] if registry else None
    text = getattr(args, "image", None) or getattr(args, "target", None)
    if handler == "search":
        term = getattr(args, "term", "") or ""
        return term.split("/", 1)[0] if "/" in term else None
    if not text or handler not in ("pull", "create", "run", "manifest"):
        return None
    try:
        from hpcbox_registry import ImageReference

        return ImageReference.parse(text).registry
    except Exception:  # not an image reference (a container name): nothing to allow
        return None


# -- environment variables --------------------------------------------------------------------------

def home_from_environment() -> Optional[str]:
    """udocker's ``UDOCKER_DIR`` names the store when hpcbox's own ``HPCBOX_HOME`` is unset."""
    return os.environ.get("UDOCKER_DIR") or None


def default_settings() -> Dict[str, Any]:
    """Container settings for ``UDOCKER_DEFAULT_EXECUTION_MODE`` (a container's own ``setup`` wins)."""
    mode = os.environ.get("UDOCKER_DEFAULT_EXECUTION_MODE", "").strip()
    if not mode:
        return {}
    from hpcbox.commands.setup import EXECMODES, settings_for

    if mode.upper() not in EXECMODES:
        raise UsageError(f"UDOCKER_DEFAULT_EXECUTION_MODE={mode} is not an execution mode",
                         f"set it to one of {', '.join(EXECMODES)} or unset it")
    return settings_for(mode)


# -- no command, help, unknown commands -------------------------------------------------------------

def short_usage(parser: argparse.ArgumentParser) -> str:
    names = ", ".join(getattr(parser, "commands", []))
    return (f"usage: {parser.prog} [OPTIONS] COMMAND [COMMAND OPTIONS] [ARGS]\n"
            f"commands: {names}\n"
            f"'{parser.prog} -h' shows every option, '{parser.prog} COMMAND -h' a command's\n")


def unknown_command(word: str, commands: Sequence[str]) -> UsageError:
    import difflib

    close = difflib.get_close_matches(word, commands, n=1)
    fix = f"did you mean '{close[0]}'?" if close else "see the commands with 'hpcbox -h'"
    return UsageError(f"unknown command {word!r}", fix)


# -- command options ---------------------------------------------------------------------------------

def registry_options(parser: argparse.ArgumentParser) -> None:
    """udocker's ``--registry``/``--index``/``--httpproxy`` of pull and search."""
    parser.add_argument("--registry", dest="registry_url", metavar="URL",
                        help="udocker's: the registry for a name without one (e.g. https://host:5000)")
    accept(parser, "--index", value=True)  # the Docker Hub v1 index: no use for a v2 registry
    refuse(parser, "--httpproxy", value=True, fix="set https_proxy/http_proxy (an http(s) proxy) in the "
           "environment; socks proxies are not supported")


def run_options(parser: argparse.ArgumentParser) -> None:
    """udocker's `run` options beyond Docker's common ones (those are declared in main)."""
    parser.add_argument("--location", metavar="DIR",
                        help="run the directory tree DIR in place, outside the store (udocker's --location)")
    parser.add_argument("--nometa", action="store_true",
                        help="ignore the image's metadata (ENTRYPOINT, CMD, Env, WorkingDir, User)")
    parser.add_argument("--device", metavar="/dev/X[:/dev/Y][:rwm]", action="append", default=[],
                        help="make a host device (or a directory of them, e.g. /dev/infiniband) visible "
                             "(repeatable; the node's own permissions apply, rwm is not enforced)")
    parser.add_argument("--dri", action="store_true",
                        help="make /dev/dri and the host's DRI driver directories visible (graphics)")
    parser.add_argument("--novol", metavar="PATH", action="append", default=[],
                        help="do not bind PATH from the host (of hpcbox's: /etc/resolv.conf, /etc/hosts)")
    parser.add_argument("-p", "--publish", metavar="PORT:PORT", action="append", default=[],
                        help="the host network is shared: accepted where both ports are equal")
    accept(parser, "-P", "--publish-all", "--netcoop")  # host network: every port already is the host's
    accept(parser, "--nobanner")  # hpcbox prints no banner
    accept(parser, "-a", "--attach")  # stdin, stdout and stderr are always attached
    accept(parser, "--volumes-from", value=True)  # udocker ignores it too
    refuse(parser, "--kernel", value=True, fix="the host kernel's version is reported; run on a newer host")
    refuse(parser, "--dns", "--dns-search", value=True,
           fix="bind your own file with -v FILE:/etc/resolv.conf")


def check_publish(values: Iterable[str]) -> None:
    """``-p H:C``: hpcbox shares the host network, so only H == C means what the user asked for."""
    for value in values:
        parts = value.split(":")
        ports = [p.split("/", 1)[0] for p in parts[-2:]]
        if len(ports) == 1 or ports[0] == ports[1]:
            continue
        raise UsageError(f"-p {value}: hpcbox shares the host network and cannot map port {ports[1]} to "
                         f"{ports[0]}",
                         f"make the program listen on port {ports[0]}, or use -p {ports[1]}:{ports[1]}")


DRI_PATHS = ("/dev/dri", "/usr/lib64/dri", "/lib64/dri", "/usr/lib/dri", "/lib/dri",
             "/usr/lib/x86_64-linux-gnu/dri", "/usr/lib/aarch64-linux-gnu/dri", "/usr/share/drirc.d")


def dri_volumes() -> List[str]:
    """``--dri``: the host's existing DRI directories, bound at the same paths (devices read-write)."""
    return [f"{p}:{p}:{'rw' if p.startswith('/dev/') else 'ro'}" for p in DRI_PATHS if os.path.isdir(p)]


def device_volume(text: str) -> str:
    """``--device=/dev/X[:/dev/Y][:rwm]`` (Docker's and udocker's form) as a volume ``HOST:DEST``.

    The permissions are accepted and not enforced: Docker applies them with a device cgroup, which
    needs root; a read-only bind does not stop writes to a device node. The node's own permissions
    decide, as on the host."""
    parts = text.split(":")
    perms = "rwm"
    if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm") and not parts[-1].startswith("/"):
        perms = parts.pop()
    if len(parts) > 2 or not parts[0].startswith("/"):
        raise UsageError(f"bad device {text!r}", "write --device=/dev/X[:/dev/Y][:rwm]")
    host = parts[0]
    dest = parts[1] if len(parts) == 2 and parts[1] else host
    if not dest.startswith("/"):
        raise UsageError(f"device destination {dest!r} is not absolute", "write --device=/dev/X:/dev/Y")
    if not os.path.exists(host):
        raise UsageError(f"device {host} does not exist on this host", "check the path given to --device")
    import stat

    mode = os.stat(host).st_mode
    if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISDIR(mode)):
        raise UsageError(f"{host} is not a device", "give a device node (or a directory of them) to --device")
    del perms
    return f"{host}:{dest}:rw"


def with_registry(image: str, url: Optional[str]) -> str:
    """udocker's ``--registry=URL`` for an image (or search term) named without a registry."""
    if not url:
        return image
    host = url.split("://", 1)[-1].rstrip("/").split("/", 1)[0]
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image  # the name has its own registry
    return f"{host}/{image}"


# -- run ---------------------------------------------------------------------------------------------

def prepare_run(args: Any) -> None:
    """udocker's `run` options as hpcbox's: devices and --dri become volumes; with --location the first
    operand is the command's."""
    check_publish(getattr(args, "publish", None) or [])
    extra = [device_volume(d) for d in getattr(args, "device", None) or []]
    if getattr(args, "dri", False):
        extra += dri_volumes()
    args.volume = [*args.volume, *extra]
    if getattr(args, "location", None):
        if args.target is not None:
            args.command = [args.target, *args.command]
            args.target = None
        if args.rm or args.name:
            raise UsageError("--rm and --name are for containers in the store, not for --location",
                             "drop them (the directory is run in place and kept)")
    elif args.target is None:
        raise UsageError("no image or container given",
                         "use 'hpcbox run [OPTIONS] IMAGE|CONTAINER [COMMAND...]'")


def drop_novol(config: Dict[str, Any], novol: Optional[Iterable[str]]) -> None:
    """``--novol=PATH``: leave out hpcbox's own host binds (/etc/resolv.conf, /etc/hosts) at PATH."""
    if not novol:
        return
    from hpcbox.runspec import HOST_FILES

    drop = {os.path.normpath(p) for p in novol} & set(HOST_FILES)
    config["mounts"] = [m for m in config["mounts"]
                        if not (m.get("destination") in drop and m.get("source") == m.get("destination"))]


class Location:
    """udocker's ``run --location=DIR``: a directory tree run in place, as a container without metadata.
    Its bundle (config.json) is a temporary directory in the store's tmp/, removed afterwards; the tree
    itself is only written by what runs in it (``keep_etc``: its /etc/passwd and /etc/group are used as
    they are, as with ``--containerauth``)."""

    storage = "copy"
    keep_etc = True
    nvidia = None
    execmode = None

    def __init__(self, directory: str, store: Any) -> None:
        from pathlib import Path

        root = Path(directory).expanduser().absolute()
        if not root.is_dir():
            raise UsageError(f"--location {directory} is not a directory",
                             "give the root of a directory tree")
        self.rootfs = root
        self.store = store
        self.names = [str(root)]
        self.short_id = str(root)
        self.settings: Dict[str, Any] = {}
        shell = next((s for s in ("/bin/bash", "/bin/sh") if os.path.exists(str(root) + s)), "/bin/sh")
        self.image_config = {"config": {"Cmd": [shell]}}  # udocker runs a shell when given no command

    def __enter__(self) -> Location:
        import tempfile
        from pathlib import Path

        self.store.init()
        self.dir = Path(tempfile.mkdtemp(prefix="location-", dir=str(self.store.tmp_dir)))
        self.config_path = self.dir / "config.json"
        return self

    def __exit__(self, *exc: Any) -> None:
        from hpcbox.containers import remove_tree

        remove_tree(self.dir)

    def in_use(self) -> ContextManager[None]:
        import contextlib

        return contextlib.nullcontext()
