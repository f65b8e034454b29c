"""Installing real Debian packages as the container's (emulated) root under the ptrace and preload
engines, then running what was installed under both: apt-get update and install from Debian's
mirror, maintainer scripts that add groups (openssh-client: _ssh and a chgrp of ssh-agent;
libibverbs1: rdma), the libc-bin trigger that runs the static /sbin/ldconfig (preload hands it to
the ptrace tracer), useradd -m (its chown shows in stat), dpkg -i of a downloaded package, in Debian 12 and
Debian 11.

The images come from the minbase tarballs of ``$HPCBOX_TEST_INPUTS`` through ``hpcbox import``.
apt's downloaded archives and lists live in a volume kept between runs (under ~/.cache), so a rerun
downloads only what changed. Skipped, with the reason, when the images' mirror is unreachable.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_cli_common import hpcbox, ok

INPUTS = Path(os.environ.get("HPCBOX_TEST_INPUTS", "/var/cache/hpcbox-test-inputs"))
DEBIANS = {"debian12": "debian12-minbase.tar.gz", "debian11": "debian11-minbase.tar.gz"}
SSH_GROUP = {"debian12": "_ssh", "debian11": "ssh"}  # openssh-client's group for ssh-agent
ENGINES = ("ptrace", "preload")
PACKAGES = "openssh-client libibverbs1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hpcbox-test-apt"


def _available(engine: str):
    try:
        if engine == "ptrace":
            from hpcbox_engine_ptrace import engine as module
        else:
            from hpcbox_engine_preload import engine as module
    except ImportError as error:
        return False, f"hpcbox-engine-{engine} is not installed ({error})"
    return module.available()


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    home = tmp_path_factory.mktemp("apt-home") / "home"
    return home


def _image(home: Path, name: str) -> str:
    tarball = INPUTS / DEBIANS[name]
    if not tarball.is_file():
        pytest.skip(f"{tarball} is missing; run `sudo scripts/prepare-test-inputs` first")
    if name not in ok(hpcbox(home, "images")).stdout:
        ok(hpcbox(home, "import", str(tarball), f"{name}:apt"))
    return f"{name}:apt"


def _mirror_reachable(home: Path, image: str) -> None:
    """Skip unless the image's first http source answers (its sources.list, read in the container)."""
    sources = ok(hpcbox(home, "run", "--rm", "--engine", "ptrace", image, "sh", "-c",
                        "cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null; true")).stdout
    urls = re.findall(r"https?://[^\s]+", sources)
    try:
        if not urls:
            raise OSError("no http source")
        parts = urlsplit(urls[0])
        socket.create_connection((parts.hostname, parts.port or 80), timeout=5).close()
    except OSError as error:
        pytest.skip(f"the image's Debian mirror is not reachable from here ({error})")


def _volumes(name: str):
    archives, lists = CACHE / name / "archives", CACHE / name / "lists"
    for d in (archives / "partial", lists / "partial"):
        d.mkdir(parents=True, exist_ok=True)
    return ["-v", f"{archives}:/var/cache/apt/archives", "-v", f"{lists}:/var/lib/apt/lists"]


INSTALL = f"""set -e
export DEBIAN_FRONTEND=noninteractive
apt-get -q update >/dev/null
apt-get install -y -q --no-install-recommends {PACKAGES} >/tmp/apt.log 2>&1 ||
  {{ tail -30 /tmp/apt.log; exit 1; }}
cd /tmp && apt-get download -q hello >/dev/null 2>&1
dpkg -i /tmp/hello_*.deb >/dev/null && rm /tmp/hello_*.deb
useradd -m -s /bin/sh alice
dpkg-query -W -f '${{Status}}\\n' {PACKAGES} hello
"""

CHECK = """set -e
ssh -V 2>&1 | cut -d, -f1 | cut -c1-8
stat -c '%U:%G %A' /usr/bin/ssh-agent
getent group {group} rdma | cut -d: -f1
stat -c '%U:%G' /home/alice
ldconfig -p | grep -c 'libibverbs.so.1 '
hello
id alice
"""

# ... and, last, `id alice` (checked apart: useradd takes the first free id)
EXPECTED = ["OpenSSH_", "root:{group} -rwxr-sr-x", "{group}", "rdma", "alice:alice", "1", "Hello, world!"]


# Debian 12 under both engines is installed by test_package_install.py (CI time); this one adds
# Debian 11, useradd -m, dpkg -i and the static ldconfig.
@pytest.mark.parametrize("debian", ["debian11"])
@pytest.mark.parametrize("engine", ENGINES)
def test_apt_installs_with_maintainer_scripts_then_runs_under_both_engines(store, engine, debian):
    usable, why = _available(engine)
    if not usable:
        pytest.skip(f"the {engine} engine is not available here: {why}")
    image = _image(store, debian)
    _mirror_reachable(store, image)
    name = f"{debian}-{engine}"
    ok(hpcbox(store, "create", "--name", name, image))
    try:
        proc = ok(hpcbox(store, "run", "--engine", engine, *_volumes(debian), name, "sh", "-c",
                         INSTALL, timeout=900))
        assert proc.stdout.split() == ["install", "ok", "installed"] * 3, proc.stdout + proc.stderr
        for runner in ENGINES:
            if not _available(runner)[0]:
                continue
            proc = ok(hpcbox(store, "run", "--engine", runner, name, "sh", "-c",
                             CHECK.format(group=SSH_GROUP[debian])))
            lines = proc.stdout.splitlines()
            expected = [line.format(group=SSH_GROUP[debian]) for line in EXPECTED]
            # useradd takes the first free id: the caller's entry in the container's passwd may hold 1000
            alice = re.fullmatch(r"uid=(\d+)\(alice\) gid=\1\(alice\) groups=\1\(alice\)", lines[-1])
            assert alice and int(alice.group(1)) >= 1000, (runner, proc.stdout, proc.stderr)
            assert lines[0].startswith(expected[0]) and lines[1:-1] == expected[1:], (runner, proc.stdout,
                                                                                   proc.stderr)
    finally:
        ok(hpcbox(store, "rm", "-f", name))
