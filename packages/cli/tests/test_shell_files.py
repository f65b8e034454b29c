"""The shell completions and the man page: current with the parser, and working in a real bash."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[1]
SHARE = CLI / "share"
BASH = SHARE / "bash-completion" / "completions" / "hpcbox"
ZSH = SHARE / "zsh" / "site-functions" / "_hpcbox"
MAN = SHARE / "man" / "man1" / "hpcbox.1"


def _shell_build():
    spec = importlib.util.spec_from_file_location("_shell_build_under_test", CLI / "shell_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands():
    parser = _shell_build().load_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return sorted(sub.choices)


def complete(line: str, completion: Path = BASH) -> set:
    """What bash offers for `line` (a trailing space: a new empty word), through the completion file."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    script = (f"source {shlex.quote(str(completion))}\n"
              f"COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n"
              f"COMP_LINE={shlex.quote(line)}; COMP_POINT={len(line)}\n"
              "fn=$(complete -p hpcbox | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')\n"
              '"$fn" hpcbox "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                         check=True).stdout
    return {w for w in out.splitlines() if w}


def test_shell_files_are_current():
    """The committed files are what the parser gives now; else run `hatch run shell-files`."""
    assert _shell_build().stale() == {}, "stale completion/man files: run `hatch run shell-files`"


def test_bash_completes_command_names():
    assert {"rm", "rmi", "rmname", "rename", "run"} <= complete("hpcbox r")
    assert all(word.startswith("r") for word in complete("hpcbox r"))
    assert set(_commands()) <= complete("hpcbox ")


def test_bash_completes_options_and_choices():
    assert {"--engine", "--env", "--env-file", "--entrypoint"} <= complete("hpcbox run --e")
    assert complete("hpcbox run --net ") == {"host", "none"}
    assert complete("hpcbox save --format ") == {"docker", "oci"}
    assert "--json" in complete("hpcbox images --")


def test_bash_completes_file_names_for_file_arguments(tmp_path):
    (tmp_path / "debian.tar").write_bytes(b"")
    offered = complete(f"hpcbox load -i {tmp_path}/deb")
    assert offered == {f"{tmp_path}/debian.tar"}


def test_zsh_completion_defines_every_command():
    text = ZSH.read_text()
    assert text.startswith("#compdef hpcbox")
    for command in _commands():
        assert re.search(rf"^\s*\"{command}:", text, re.M), command
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", str(ZSH)], check=True)


def test_man_page_documents_every_command():
    text = MAN.read_text()
    assert text.startswith('.TH HPCBOX "1" "" "hpcbox ')
    for command in _commands():
        assert f".SH COMMAND \\fI\\,'hpcbox {command}'" in text, command
    if not shutil.which("man"):
        pytest.skip("man (man-db) is not installed: the roff was checked, not its rendering")
    shown = subprocess.run(["man", "-l", str(MAN)], capture_output=True, text=True, check=True,
                           env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin", "MAN_KEEP_FORMATTING": ""})
    assert "hpcbox run [-h]" in shown.stdout.replace("\u2010", "-")
