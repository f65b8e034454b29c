"""A stand-in for apptainer/singularity, generated as a small executable Python script.

It answers `--version` and `help exec` like the real binary of a chosen flavor and version (cobra's
layout for 3.x/Apptainer, the old layout for 2.x), parses `exec` options the way the real one does
(an option it does not have fails with status 255, as cobra reports an unknown flag), appends one
JSON record per exec (argv, environment, parsed options, the container's environment after
--cleanenv and the *ENV_ prefixes), then execs the command on the host with that environment, so
exit statuses, signal deaths, stdin and signal delivery pass through for real.
"""

from __future__ import annotations

import json
import stat
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

CALLER = 4321  # the uid tests tell the engine it runs as, so uid-dependent choices are deterministic

# name: (short letter or "", takes a value, help text)
ALL_OPTIONS = {
    "bind": ("B", True, "a user-bind path specification.  spec has the format src[:dest[:opts]]"),
    "cleanenv": ("e", False, "clean environment before running container"),
    "contain": ("c", False, "use minimal /dev and empty other directories (e.g. /tmp and $HOME)"),
    "containall": ("C", False, "contain not only file systems, but also PID, IPC, and environment"),
    "cwd": ("", True, "initial working directory for payload process (synonym for --pwd)"),
    "env": ("", True, "pass environment variable to contained process"),
    "fakeroot": ("f", False, "run container in new user namespace as uid 0"),
    "home": ("H", True, "a home directory specification.  spec can either be a src path or src:dest pair"),
    "hostname": ("", True, "set container hostname"),
    "ipc": ("i", False, "run container in a new IPC namespace"),
    "net": ("n", False, "run container in a new network namespace"),
    "network": ("", True, "specify desired network type separated by commas"),
    "no-home": ("", False, "do NOT mount users home directory if /home is not the current working directory"),
    "no-mount": ("", True, "disable one or more 'mount xxx' options set in apptainer.conf"),
    "nv": ("", False, "enable Nvidia support"),
    "pid": ("p", False, "run container in a new PID namespace"),
    "pwd": ("", True, "initial working directory for payload process inside the container"),
    "rocm": ("", False, "enable experimental Rocm support"),
    "scratch": ("S", True, "include a scratch directory within the container, linked to a temporary dir"),
    "userns": ("u", False, "run container in a new user namespace"),
    "uts": ("", False, "run container in a new UTS namespace"),
    "workdir": ("W", True, "working directory to be used for /tmp, /var/tmp and $HOME"),
    "writable": ("w", False, "by default all Apptainer containers are available as read only"),
}
MODERN = frozenset(ALL_OPTIONS) - {"cwd"}
KINDS = {
    # 1.4 lists --cwd and hides --pwd, as the real 1.4.5 does
    "apptainer-1.4.5": ("apptainer", "apptainer version 1.4.5", MODERN - {"pwd"} | {"cwd"}),
    "apptainer-1.2.5": ("apptainer", "apptainer version 1.2.5", MODERN),
    "apptainer-1.0.3": ("apptainer", "apptainer version 1.0.3", MODERN),
    "singularity-ce-3.11.4": ("singularity", "singularity-ce version 3.11.4", MODERN),
    "singularity-3.8.7": ("singularity", "singularity version 3.8.7", MODERN),
    # before --no-mount (3.7), with no --rocm, --uts, --hostname, --no-home nor --fakeroot
    "singularity-3.2.1": ("singularity", "singularity version 3.2.1",
                          MODERN - {"no-mount", "rocm", "fakeroot", "hostname", "uts", "no-home", "scratch",
                                    "workdir"}),
    "singularity-2.6.1": ("singularity", "2.6.1-dist",
                          frozenset({"bind", "cleanenv", "contain", "containall", "home", "ipc", "nv", "pid",
                                     "pwd", "scratch", "userns", "writable", "hostname", "uts", "workdir"})),
}

SCRIPT = r'''#!{python}
import json, os, sys

FLAVOR = {flavor!r}
VERSION_LINE = {version_line!r}
LEGACY = {legacy!r}
OPTIONS = {options!r}
RECORD = {record!r}
PREFIXES = ["APPTAINERENV_", "SINGULARITYENV_"] if FLAVOR == "apptainer" else ["SINGULARITYENV_"]


def help_exec():
    name = FLAVOR
    if LEGACY:
        out = ["USAGE: %s [...] exec [exec options...] <container path> <command>" % name, "",
               "EXEC OPTIONS:"]
        for opt, (short, value, text) in sorted(OPTIONS.items()):
            spec = ("-%s/--%s" % (short, opt) if short else "    --%s" % opt) + (" <spec>" if value else "")
            out.append("    %-24s %s" % (spec, text))
        out += ["", "EXAMPLES:", "    $ %s exec --rocm --fakeroot container.img cat /etc/os-release" % name]
        return "\n".join(out)
    out = ["Run a command within a container", "", "Usage:",
           "  %s [exec options...] <container> <command>" % name, "", "Description:",
           "  The command is run inside the container; options such as --rocm and --fakeroot",
           "  are described below.", "", "Options:"]
    for opt, (short, value, text) in sorted(OPTIONS.items()):
        flag = ("-%s, --%s" % (short, opt)) if short else "    --%s" % opt
        out.append("  %-28s %s" % (flag + (" string" if value else ""), text))
    out += ["  -h, --help                   help for exec", "", "Examples:",
            "  $ %s exec --fakeroot --rocm /tmp/debian.sif cat /etc/debian_version" % name]
    return "\n".join(out)


def fail(text):
    sys.stderr.write(text + "\n")
    sys.exit(255)


def main(argv):
    if argv[:1] in (["--version"], ["version"]):
        print(VERSION_LINE)
        return 0
    if argv[:2] in (["help", "exec"], ["exec", "--help"]):
        print(help_exec())
        return 0
    if argv[:1] != ["exec"]:
        fail("Error: unknown command %r for %r" % (argv[:1], FLAVOR))
    options, rest = [], argv[1:]
    while rest and rest[0].startswith("-"):
        token = rest.pop(0)
        name, _, inline = token.lstrip("-").partition("=")
        if len(token) == 2:
            matches = [n for n, spec in OPTIONS.items() if spec[0] == token[1]]
            name = matches[0] if matches else token
        if name not in OPTIONS:
            fail("Error: unknown flag: %s" % token)
        value = None
        if OPTIONS[name][1]:
            if inline:
                value = inline
            elif rest:
                value = rest.pop(0)
            else:
                fail("Error: flag needs an argument: --%s" % name)
        options.append([name, value])
    if len(rest) < 2:
        fail("Error: requires at least 2 arg(s), only received %d" % len(rest))
    container, command = rest[0], rest[1:]
    names = [n for n, _ in options]
    if not os.path.isdir(container):
        fail("FATAL:   could not open image %s: failed to retrieve path for %s" % (container, container))
    if "cleanenv" in names or "containall" in names:
        env = {{}}
    else:
        env = {{k: v for k, v in os.environ.items() if not k.startswith(tuple(PREFIXES))}}
    for prefix in reversed(PREFIXES):
        for key, value in os.environ.items():
            if key.startswith(prefix) and key[len(prefix):]:
                env[key[len(prefix):]] = value
    homes = [v for n, v in options if n == "home"]
    env["HOME"] = homes[-1].split(":")[-1] if homes else os.environ.get("HOME", "/")
    with open(RECORD, "a") as handle:
        handle.write(json.dumps({{"argv": [sys.argv[0]] + argv, "env": dict(os.environ), "options": options,
                                 "container": container, "command": command, "container_env": env}}) + "\n")
    try:
        os.execvpe(command[0], command, env)
    except OSError as error:
        fail("FATAL:   %s: %s" % (command[0], error.strerror))


sys.exit(main(sys.argv[1:]))
'''


class StandIn:
    """One generated stand-in binary and the records it writes."""

    def __init__(self, path: Path, record: Path, kind: str):
        self.path, self.record, self.kind = path, record, kind

    def records(self) -> List[Dict]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]

    def last(self) -> Dict:
        records = self.records()
        assert records, f"{self.path} was never asked to exec"
        return records[-1]

    def option_values(self, name: str) -> List[Optional[str]]:
        return [value for opt, value in self.last()["options"] if opt == name]

    def has_option(self, name: str) -> bool:
        return any(opt == name for opt, _ in self.last()["options"])


def make_standin(directory: Path, kind: str = "apptainer-1.2.5", *, name: Optional[str] = None,
                 drop=(), version_line: Optional[str] = None) -> StandIn:
    """Write an executable stand-in named like the real binary of `kind` into `directory`."""
    flavor, default_line, features = KINDS[kind]
    features = set(features) - set(drop)
    options = {n: ALL_OPTIONS[n] for n in features}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or flavor)
    record = directory / f"{path.name}.records.jsonl"
    path.write_text(SCRIPT.format(python=sys.executable, flavor=flavor,
                                  version_line=version_line or default_line,
                                  legacy=kind.endswith("2.6.1"), options=options, record=str(record)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return StandIn(path, record, kind)


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


def run_bundle(engine, bundle, stdin_text: str = "") -> Result:
    """engine.run() with stdin from a file and stdout/stderr captured in files."""
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        fin.write(stdin_text.encode())
        fin.seek(0)
        code = engine.run(bundle, stdin=fin, stdout=fout, stderr=ferr)
        fout.seek(0)
        ferr.seek(0)
        return Result(code, fout.read().decode(), ferr.read().decode())
