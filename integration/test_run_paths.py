"""Exact Linux path semantics under the path-translating engines, with runc as the reference.

A perl probe (hpcbox_testing/paths_probe.pl) makes a small tree in the container's /tmp and calls
rmdir, unlink, mkdir, rename, symlink, link, open and stat with final ".", "..", trailing "/",
symlinks followed by "/", and "/" or "/.." themselves, printing each result or errno and the tree
left behind. Under ptrace and preload the output must be the same as under runc, which hands the
kernel the program's own paths; a few lines are also checked against what Linux documents, so
that the test keeps its teeth where runc cannot run.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import ok

run_store = common.run_store  # fixtures

PROBE = (Path(__file__).parent / "hpcbox_testing" / "paths_probe.pl").read_text()

# What Linux does (path_resolution(7), rmdir(2), unlink(2), rename(2), mkdir(2)).
LINUX = {
    "rmdir d1/.": f"errno {errno.EINVAL}",
    "rmdir abs/d1/.": f"errno {errno.EINVAL}",
    "rmdir d2/sub/..": f"errno {errno.ENOTEMPTY}",
    "rmdir ld/": f"errno {errno.ENOTDIR}",
    "rmdir labs/": f"errno {errno.ENOTDIR}",
    "rmdir /": f"errno {errno.EBUSY}",
    "unlink f/": f"errno {errno.ENOTDIR}",
    "mkdir new/": "ok",
    "mkdir dang/": f"errno {errno.EEXIST}",
    "rename f/ h": f"errno {errno.ENOTDIR}",
    "rename ld/ x": f"errno {errno.ENOTDIR}",
    "open f/": f"errno {errno.ENOTDIR}",
    "creat-excl dang": f"errno {errno.EEXIST}",
    "stat /.. is /": "ok",
    "ls /.. is ls /": "ok",
}


def probe(store, engine: str) -> str:
    proc = ok(store("run", *common.engine_args(store, engine), "--rm", "debian", "perl", "-e", PROBE))
    return proc.stdout


def assert_linux(output: str) -> None:
    lines = dict(line.split(": ", 1) for line in output.splitlines() if not line.startswith("tree "))
    assert {name: lines.get(name) for name in LINUX} == LINUX
    tree = [line.split()[1].rsplit("/", 1)[1] for line in output.splitlines() if line.startswith("tree ")]
    assert "d1" in tree and "d2" in tree and "sub" in tree  # rmdir d1/. and d2/sub/.. removed nothing
    assert "new" in tree and "d4" not in tree


@pytest.fixture(scope="module")
def reference(run_store) -> str:
    """The probe's output under runc (the kernel sees the program's own paths), or '' without it."""
    try:
        return probe(run_store, "runc")
    except pytest.skip.Exception:
        return ""


@pytest.mark.parametrize("engine", ["runc", "ptrace", "preload"])
def test_dots_and_trailing_slashes_as_linux(run_store, reference, engine):
    output = reference if engine == "runc" else probe(run_store, engine)
    if engine == "runc" and not output:
        pytest.skip("the runc engine is not available here")
    assert_linux(output)
    if reference:
        assert output == reference


BINDINGS_SCRIPT = r"""
set -u
echo "pwd: $(/bin/pwd)"
echo "ls /mnt: $(ls /mnt 2>&1)"
echo "ls /mnt/deep: $(ls /mnt/deep 2>&1)"
echo "stat /mnt/deep: $(stat -c %F /mnt/deep 2>&1)"
echo "ls /var/run/vol: $(ls /var/run/vol 2>&1)"
echo "ls /run/vol: $(ls /run/vol 2>&1)"
echo "ls /a: $(ls /a 2>&1)"
ln -s /some/guest/target "/hostroot$LINKDIR/made-inside"
echo "readlink: $(readlink "/hostroot$LINKDIR/made-inside")"
mkdir -p /tmp/sock && cd /tmp/sock && perl -MSocket -e '
    mkdir "d"; my $rel = "d/" . ("s" x 105);
    socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
    print "bind 107-byte relative: ", (bind($s, pack_sockaddr_un($rel)) ? "ok" : "errno " . ($! + 0)),
          ", ", (-S $rel ? "socket there" : "no socket"), "\n";'
"""


def test_bindings_behave_like_mounts(run_store, engine_for_bindings, tmp_path):
    """-w /a with one host directory at /b then /a: pwd shows /a (the later mount); a volume below
    missing directories shows them; a volume at a path that is a symlink in the image (/var/run)
    lands where it points; a link made in a volume of / reads back as written; a 107-byte relative
    AF_UNIX path binds."""
    shared, deep, run_vol, links = (tmp_path / n for n in ("shared", "deep", "runvol", "links"))
    for d in (shared, deep, run_vol, links):
        d.mkdir()
    (shared / "in-shared").write_text("x")
    (run_vol / "in-runvol").write_text("x")
    proc = ok(run_store(
        "run", *common.engine_args(run_store, engine_for_bindings), "--rm", "-w", "/a",
        "-v", f"{shared}:/b", "-v", f"{shared}:/a", "-v", f"{deep}:/mnt/deep/data",
        "-v", f"{run_vol}:/var/run/vol", "-v", "/:/hostroot", "-e", f"LINKDIR={links}",
        "debian", "sh", "-c", BINDINGS_SCRIPT))
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert lines == {
        "pwd": "/a",
        "ls /mnt": "deep",
        "ls /mnt/deep": "data",
        "stat /mnt/deep": "directory",
        "ls /var/run/vol": "in-runvol",
        "ls /run/vol": "in-runvol",
        "ls /a": "in-shared",
        "readlink": "/some/guest/target",
        "bind 107-byte relative": "ok, socket there",
    }, proc.stdout + proc.stderr
    assert os.readlink(links / "made-inside") == "/some/guest/target"


@pytest.fixture(params=["runc", "ptrace", "preload"])
def engine_for_bindings(request) -> str:
    return request.param
