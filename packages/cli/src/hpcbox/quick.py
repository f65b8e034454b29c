"""The `hpcbox` command's entry point, with a lean path for `hpcbox run`.

Many-task workflows and MPI launches start thousands of short containers, so `hpcbox run CONTAINER`
must cost little more than the Python interpreter's own start. :mod:`hpcbox.main` builds the whole
argparse parser and the store's modules import pathlib, json, re and typing: ~20 ms before anything
runs. Here:

- :func:`parse_run` reads `hpcbox [--home DIR] run [OPTIONS] TARGET [COMMAND...]` itself, option by
  option as argparse would, into the same attributes. Anything it is not sure to read exactly as
  argparse does (help, abbreviations, ``--``, unknown or malformed options, a value that looks like an
  option, the registry options) makes it return None, and argparse reads the command line instead;
  ``tests/test_quick.py`` checks both readings agree, and that the option table matches the parser's.
- :func:`find_container` looks the target up as ``ContainerStore.get`` does (name, id, unique id
  prefix), reading ``container.json`` files without json, pathlib or the store's modules.
- An existing copy container then runs through the same code as always
  (:func:`hpcbox.commands.run._run`); an image, an overlay container, a container set up with
  ``--nvidia``, or ``--gpus`` go to `run`'s own command (:func:`hpcbox.commands.run.run`, what
  :mod:`hpcbox.main` calls), without building the parser; every other command line takes the full
  path of :mod:`hpcbox.main`.
"""

from __future__ import annotations

import gc
import os
import sys

from hpcbox.leancontainers import find_container
from hpcbox.storehome import store_home

TYPE_CHECKING = False  # argparse and typing for the type checker only: this module avoids both
if TYPE_CHECKING:
    from argparse import Namespace as _Namespace
    from typing import Any, Dict, FrozenSet, List
else:
    _Namespace = object

# run's options as hpcbox.main declares them: option strings -> (dest, kind, choices, const).
# kind: "flag" (store_true), "unflag" (store_false), "const" (store_const), "value" (store), "append".
RUN_OPTIONS = {
    ("--rm",): ("rm", "flag", None, None),
    ("--overlay",): ("overlay", "flag", None, None),
    ("--name",): ("name", "value", None, None),
    ("--pull",): ("pull", "value", ("missing", "never", "always"), None),
    ("--platform",): ("platform", "value", None, None),
    ("-q", "--quiet"): ("quiet", "flag", None, None),
    ("-v", "--volume"): ("volume", "append", None, None),
    ("-e", "--env"): ("env", "append", None, None),
    ("--env-file",): ("env_file", "append", None, None),
    ("-w", "--workdir"): ("workdir", "value", None, None),
    ("-u", "--user"): ("user", "value", None, None),
    ("--entrypoint",): ("entrypoint", "value", None, None),
    ("--hostenv",): ("hostenv", "flag", None, None),
    ("--no-batch-env",): ("batchenv", "unflag", None, None),
    ("--hostauth",): ("hostauth", "flag", None, None),
    ("--containerauth",): ("containerauth", "flag", None, None),
    ("--bindhome",): ("bindhome", "flag", None, None),
    ("--nosysdirs",): ("nosysdirs", "flag", None, None),
    ("--hostname",): ("hostname", "value", None, None),
    ("--cpuset-cpus",): ("cpuset_cpus", "value", None, None),
    ("--engine",): ("engine", "value", None, None),
    ("--runtime",): ("runtime", "value", ("builtin", "runc", "crun"), None),
    ("--net",): ("net", "value", ("host", "none"), None),
    ("--gpus",): ("gpus", "value", None, None),
    ("--nv",): ("gpus", "const", None, "all"),
    ("-i", "--interactive"): ("interactive", "flag", None, None),
    ("-t", "--tty"): ("tty", "flag", None, None),
    ("--progress",): ("progress", "value", ("auto", "bars", "lines", "none"), None),
    ("--as-me",): ("run_as", "const", None, "me"),
    ("--as-root",): ("run_as", "const", None, "root"),
}
RUN_DEFAULTS = {"pull": "missing", "net": "host", "batchenv": True}
# run's options that this module leaves to argparse (udocker's; hpcbox.main's parser says what they do),
# with the value argparse gives when they are absent (ABSENT: no attribute at all).
ABSENT = object()
RUN_ASIDE = {
    ("--location",): ("location", None), ("--nometa",): ("nometa", False), ("--device",): ("device", []),
    ("--dri",): ("dri", False), ("--novol",): ("novol", []), ("-p", "--publish"): ("publish", []),
    ("-P", "--publish-all", "--netcoop"): ("publish_all", False), ("--nobanner",): ("nobanner", False),
    ("-a", "--attach"): ("attach", False), ("--volumes-from",): ("volumes_from", None),
    ("--kernel",): ("kernel", ABSENT), ("--dns", "--dns-search"): ("dns", ABSENT),
}
# hpcbox's options before the command, with their values when absent; only --home is read here.
TOP_DEFAULTS: Dict[str, Any] = {
    "home": None, "insecure_registry": [], "ca_bundle": None, "global_quiet": False,
    "global_debug": False, "global_insecure": False, "global_allow_root": False}
_OPTIONS = {flag: spec for flags, spec in RUN_OPTIONS.items() for flag in flags}
# run's mutually exclusive options (argparse refuses two different ones of a group on one line).
RUN_EXCLUSIVE = (frozenset({"--as-me", "--as-root"}),)
_EXCLUSIVE = {flag: group for group in RUN_EXCLUSIVE for flag in group}


_LONG = (*(f for f in _OPTIONS if f.startswith("--")),
         *(f for flags in RUN_ASIDE for f in flags if f.startswith("--")), "--help", "--home", "--repo",
         "--insecure-registry", "--ca-bundle", "--version", "--quiet", "--debug", "--insecure",
         "--allow-root", "--config")


def _ambiguous(word: str) -> bool:
    """An abbreviation of two or more options: argparse refuses it even in the COMMAND part."""
    name = word.partition("=")[0]
    return word.startswith("--") and name not in _LONG and sum(f.startswith(name) for f in _LONG) > 1


class Args(_Namespace):
    """The attributes argparse would give (an ``argparse.Namespace`` without importing argparse; the
    type checker sees a Namespace, which it is for every reader)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Args({self.__dict__!r})"


def parse_run(words: List[str]) -> Args | None:
    """`[--home DIR] run [OPTIONS] TARGET [COMMAND...]` read as hpcbox.main's parser reads it, or None
    when that parser must read *words* (anything else, or anything not read here with certainty)."""
    top_home, i = None, 0
    while i < len(words) and words[i] != "run":
        word = words[i]
        if word == "--home" and i + 1 < len(words) and not words[i + 1].startswith("-"):
            top_home, i = words[i + 1], i + 2
        elif word.startswith("--home="):
            top_home, i = word[7:], i + 1
        else:
            return None
    values: Dict[str, Any] = {**{k: list(v) if isinstance(v, list) else v for k, v in TOP_DEFAULTS.items()},
                    "home": top_home}
    for dest, kind, *_ in RUN_OPTIONS.values():
        values[dest] = [] if kind == "append" else RUN_DEFAULTS.get(dest, False if kind == "flag" else None)
    for dest, default in RUN_ASIDE.values():
        if default is not ABSENT:
            values[dest] = list(default) if isinstance(default, list) else default
    i += 1
    exclusive: Dict[FrozenSet[str], str] = {}  # group -> the option of it given
    while i < len(words):
        word = words[i]
        if not word.startswith("-") or word == "-":
            if word == "-" or any(w == "--" or _ambiguous(w) for w in words[i + 1:]):
                return None  # (argparse's handling of '--' changed between Python versions)
            values.update(command=list(words[i + 1:]), target=word, handler="run")
            return Args(**values)
        if word.startswith("--"):
            name, eq, given = word.partition("=")
            spec = ("home", "value", None, None) if name == "--home" else _OPTIONS.get(name)
            if spec is None or (eq and spec[1] not in ("value", "append")):
                return None  # '--', an abbreviation, an unknown option, a flag given a value
            group = _EXCLUSIVE.get(name)
            if group is not None and exclusive.setdefault(group, name) != name:
                return None  # two options that exclude each other: argparse's error
            value = given if eq else None
        elif len(word) == 2 and word in _OPTIONS:
            spec, value = _OPTIONS[word], None
        elif all(f"-{c}" in _OPTIONS and _OPTIONS[f"-{c}"][1] == "flag" for c in word[1:]):
            for c in word[1:]:  # a cluster of short flags such as -it
                values[_OPTIONS[f"-{c}"][0]] = True
            i += 1
            continue
        else:
            return None  # -xVALUE, -x=VALUE, a negative number...: argparse's rules
        dest, kind, choices, const = spec
        if kind in ("value", "append") and value is None:
            if i + 1 >= len(words) or words[i + 1].startswith("-"):
                return None
            i += 1
            value = words[i]
        if choices is not None and value not in choices:
            return None
        if kind == "append":
            values[dest] = [*values[dest], value]
        else:
            values[dest] = {"flag": True, "unflag": False, "const": const}.get(kind, value)
        i += 1
    return None  # no TARGET: argparse's error


# -- the entry point ------------------------------------------------------------------------------------

def run_existing(args: Args) -> int | None:
    """Run the existing container *args* names; None (having done nothing) when the full path must."""
    if args.name is not None or args.gpus is not None:
        return None
    home = store_home(args)
    container = find_container(home, args.target) if home else None
    if container is None or container.storage != "copy" or container.nvidia:
        return None
    from hpcbox.commands import run as command

    try:
        return command._run(args, container)
    finally:
        if args.rm:
            from hpcbox import settings
            from hpcbox.containers import ContainerStore

            command._remove(ContainerStore(settings.store(args)), container)


def run_command(args: Args) -> int:
    """Anything else that :func:`parse_run` read: an image (created, pulled when missing), ``--name``,
    ``--gpus``, a container that is not a plain copy. This is what :func:`hpcbox.main.main` calls for
    `run` once its parser has read the same attributes (``tests/test_quick.py``), and its global options
    are all absent here: the parser and hpcbox.main's imports (~12 ms of `hpcbox run --rm --overlay
    IMAGE`) are skipped."""
    from hpcbox.commands import run as command

    return int(command.run(args) or 0)


def _udocker_settings() -> bool:
    """Whether udocker's name or environment asks for what hpcbox.udocker.apply_globals does."""
    level = os.environ.get("UDOCKER_LOGLEVEL", "").strip()
    return (os.path.basename(sys.argv[0]) in ("udocker", "hpcbox-udocker")
            or (level.isdigit() and int(level) <= 2))


def _end_now(status: int, exit_handlers: bool = False) -> None:
    """End the process with *status* once the container has ended, without the interpreter's teardown
    (freeing every module and object: 3-4 ms of each `hpcbox run`, after the program is done). Nothing
    is left to run: no thread, no atexit handler on this path; Python's own buffered output is flushed
    first, and if that fails the normal exit reports it.

    *exit_handlers*: for a command of the full path (:mod:`hpcbox.main`), which may have started threads
    and registered atexit handlers (temporary directories' finalizers): the normal exit is kept while a
    non-daemon thread still runs; otherwise the atexit handlers run as they would, and only the teardown
    is skipped (40-150 ms after a pull here, with requests and ~340 modules loaded)."""
    if exit_handlers:
        threading = sys.modules.get("threading")
        if threading is not None and any(t.is_alive() and not t.daemon and t is not threading.main_thread()
                                         for t in threading.enumerate()):
            return
        import atexit

        atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        return
    os._exit(status & 0xFF)


def main(argv: List[str] | None = None) -> int:
    """`hpcbox`: the lean path for `run`, else :func:`hpcbox.main.main`."""
    args = None if _udocker_settings() else parse_run(sys.argv[1:] if argv is None else list(argv))
    if args is not None:
        if argv is None:
            # The `hpcbox` command itself, which ends with the container: no cyclic garbage collection
            # (the imports and the config allocate enough for collections worth ~1.5 ms per start; the
            # run path makes few cycles, and the process ends with the container).
            gc.disable()
        went_on = False  # to `run`'s own command (an image: create, maybe pull; threads, atexit handlers)
        try:
            status = run_existing(args)
            if status is None:
                from hpcbox.quickimage import run_image

                status = run_image(args)
            if status is None:
                went_on = True
                if argv is None:
                    gc.enable()  # a create may extract layers or pull: long, and making garbage
                status = run_command(args)
        except SystemExit:
            raise
        except BaseException as exc:  # reported exactly as hpcbox.main reports it
            from hpcbox import main as full

            if isinstance(exc, KeyboardInterrupt):
                full._report(exc)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(130)
            if os.environ.get("HPCBOX_DEBUG") == "1":
                raise
            return full._report(exc)
        if argv is None:  # the `hpcbox` command itself (not a caller that goes on)
            _end_now(int(status or 0), exit_handlers=went_on)
        return int(status or 0)
    if argv is None:
        gc.enable()  # the full path (pulls, layers) may run long and make garbage
    from hpcbox.main import main as full_main

    status = full_main(argv)
    if argv is None:  # the `hpcbox` command itself: its work is done, the teardown is not needed
        _end_now(int(status or 0), exit_handlers=True)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
