"""Generate the bash and zsh completions and the man page of `hpcbox` from its argparse parser.

    python packages/cli/shell_build.py            rewrite the files under packages/cli/share/
    python packages/cli/shell_build.py --check    exit 1 (naming the stale files) if they are not current

The files are committed and shipped by the wheel as shared data (share/bash-completion/..., share/zsh/...,
share/man/man1/hpcbox.1; see pyproject.toml), so packagers need neither generator at build time:
Debian 12's shtab (1.5.5) writes a bash completion that never completes the command names. The
generators are pinned (hatch.toml), so a regeneration is byte for byte reproducible and the test
`test_shell_files_are_current` can tell when the parser changed without them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict

HERE = Path(__file__).resolve().parent
SHARE = HERE / "share"
FILES = {
    "bash": "bash-completion/completions/hpcbox",
    "zsh": "zsh/site-functions/_hpcbox",
    "man": "man/man1/hpcbox.1",
}
# Metavars whose values are host paths: the shells complete file or directory names there.
_FILE_METAVARS = {"FILE", "HOST[:CONTAINER[:ro]]", "FILE|-"}
_DIR_METAVARS = {"DIR"}


def load_parser() -> argparse.ArgumentParser:
    """The full parser of src/hpcbox/main.py (imported from this tree, not from an installed hpcbox)."""
    os.environ["COLUMNS"] = "80"  # the help formatter's width: the same output on every terminal
    import importlib.util

    # main.py is loaded from this tree by path; it imports only hpcbox.__about__ from its package,
    # taken from an installed hpcbox when there is one (the same tree in hatch's environments).
    added = importlib.util.find_spec("hpcbox") is None
    if added:
        sys.path.insert(0, str(HERE / "src"))
    try:
        spec = importlib.util.spec_from_file_location("_hpcbox_main_for_shell_build",
                                                      HERE / "src" / "hpcbox" / "main.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        parser = module.build_parser(full=True)
    finally:
        if added:
            sys.path.remove(str(HERE / "src"))
    _mark_paths(parser)
    return parser


def _mark_paths(parser: argparse.ArgumentParser) -> None:
    """Tell shtab which arguments take host paths (it reads an action's `complete` attribute)."""
    import shtab

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _mark_paths(sub)
        elif action.metavar in _FILE_METAVARS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.metavar in _DIR_METAVARS:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]


def generate(parser: argparse.ArgumentParser) -> Dict[str, str]:
    """{relative path under share/: content} for the three files."""
    import shtab
    from argparse_manpage.manpage import Manpage

    version = _version()
    page = Manpage(parser)
    page.date = ""  # no build date: the file must not change from one day to the next
    page.source = f"hpcbox {version}"
    page.manual = "User Commands"
    page.description = "run Docker/OCI containers without root, daemon or administrator"
    return {
        FILES["bash"]: shtab.complete(parser, shell="bash"),
        FILES["zsh"]: shtab.complete(parser, shell="zsh"),
        FILES["man"]: str(page),
    }


def _version() -> str:
    about: Dict[str, str] = {}
    exec((HERE / "src" / "hpcbox" / "__about__.py").read_text(), about)
    return about["__version__"]


def stale() -> Dict[str, str]:
    """The files under share/ that differ from a fresh generation: {path: fresh content}."""
    fresh = generate(load_parser())
    return {rel: text for rel, text in fresh.items()
            if not (SHARE / rel).is_file() or (SHARE / rel).read_text() != text}


def main(argv=None) -> int:
    check = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    check.add_argument("--check", action="store_true", help="only report stale files")
    args = check.parse_args(argv)
    changed = stale()
    if args.check:
        for rel in sorted(changed):
            sys.stderr.write(f"shell_build: {SHARE / rel} is not current; run: "
                             "hatch run shell-files\n")
        return 1 if changed else 0
    for rel, text in changed.items():
        path = SHARE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        sys.stderr.write(f"shell_build: wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
