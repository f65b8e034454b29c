"""The tracer (hpcbox-ptrace) on walks that start in a guest directory above a binding: with the
seccomp fast path, descriptors of such directories move into the reserved range, where every call
relative to them stops, so that `find /` and `tar -C /` see a volume's files as under a mount; walks
elsewhere keep the fast path (their stop counts do not change with a volume bound)."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from hpcbox_engine_ptrace import engine, tracer_path

INPUTS = Path(os.environ.get("HPCBOX_TEST_INPUTS", "/var/cache/hpcbox-test-inputs"))
DEBIAN = INPUTS / "debian12-minbase.tar.gz"
TRACER = str(tracer_path())
_OK, _WHY = engine.available()

pytestmark = pytest.mark.skipif(not _OK, reason=f"the ptrace engine is not available here: {_WHY}")


@pytest.fixture(scope="module")
def debian(tmp_path_factory):
    if not DEBIAN.is_file():
        pytest.skip(f"{DEBIAN} is missing; run `sudo scripts/prepare-test-inputs`")
    root = tmp_path_factory.mktemp("debian")
    with tarfile.open(DEBIAN) as tar:
        members = [m for m in tar.getmembers() if not (m.isdev() or m.isfifo())]
        tar.extractall(root, members=members)  # our own test input
    (root / "vol").mkdir()  # the mount point, empty in the rootfs
    (root / "srv/a/deep").mkdir(parents=True)  # and one two levels down
    return root


@pytest.fixture()
def volumes(tmp_path):
    vol, deep = tmp_path / "vol", tmp_path / "deep"
    vol.mkdir()
    deep.mkdir()
    (vol / "v").write_text("v\n")
    (deep / "d").write_text("d\n")
    return [("/vol", vol), ("/srv/a/deep", deep)]


def run(rootfs, script, binds=(), opts=()):
    cmd = [TRACER, "--rootfs", str(rootfs), "--bind", "/proc", "/proc", *opts]
    for guest, host in binds:
        cmd += ["--bind", guest, str(host)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run([*cmd, "--", "/bin/sh", "-c", script], capture_output=True, text=True, timeout=120,
                          check=False, cwd="/", env=env)


WALK = r"""
echo "find: $(find / -maxdepth 2 -path '/vol*' | sort | tr '\n' ' ')"
echo "deep: $(find /srv -path '/srv/a/deep*' | sort | tr '\n' ' ')"
echo "tar: $(tar -C / -cf - vol/v | tar -tf - | tr '\n' ' ')"
echo "tar-deep: $(tar -C /srv -cf - a/deep/d | tar -tf - | tr '\n' ' ')"
"""


@pytest.mark.parametrize("mode", [[], ["--trace-dirfd"], ["--no-seccomp"]])
def test_walks_from_a_directory_above_a_binding_see_its_files(debian, volumes, mode):
    """find and tar name files relative to a descriptor of "/" (or of /srv above /srv/a/deep): they see
    the bindings' files, as with a mount, in every mode (the fast path included)."""
    proc = run(debian, WALK, binds=volumes, opts=mode)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "find: /vol /vol/v ", "deep: /srv/a/deep /srv/a/deep/d ", "tar: vol/v ", "tar-deep: a/deep/d "], \
        proc.stdout + proc.stderr


def test_a_descriptor_of_the_root_moves_into_the_reserved_range(debian, volumes):
    """find's descriptors of "/" (its open and fts's F_DUPFD copy) lie in the reserved range at the top
    of RLIMIT_NOFILE (up to 1024), none below it; the shell's own descriptors stay where they were."""
    soft = int(subprocess.run(["sh", "-c", "ulimit -n"], capture_output=True, text=True, check=True).stdout)
    if soft < 128:
        pytest.skip(f"RLIMIT_NOFILE {soft}: too low for a reserved range")
    reserved = min(soft, 1024) - 64
    script = "find / -maxdepth 1 -name etc -exec sh -c 'ls -l /proc/$PPID/fd/' \\;"
    proc = run(debian, script, binds=volumes)
    assert proc.returncode == 0, proc.stderr
    links = [(int(line.split()[-3]), line.split()[-1]) for line in proc.stdout.splitlines() if " -> " in line]
    roots = [fd for fd, target in links if target == "/"]
    assert roots and all(fd >= reserved for fd in roots), proc.stdout
    assert all(fd < reserved for fd, target in links if target != "/"), proc.stdout


def _stops(proc):
    lines = proc.stderr.splitlines()
    return sum(int(line.split()[2]) for line in lines if line.startswith("hpcbox-ptrace:   "))


def test_walks_below_no_binding_keep_the_fast_path(debian, volumes):
    """find and tar in /usr stop as often with volumes bound as without: only descriptors of
    directories above a binding leave the fast path."""
    script = "find /usr/share -name '*.gz' | wc -l; tar -C /usr/share -cf /dev/null doc"
    bare = run(debian, script, opts=["--stats"])
    bound = run(debian, script, binds=volumes, opts=["--stats"])
    assert bare.returncode == 0 and bound.returncode == 0, bare.stderr + bound.stderr
    assert bare.stdout == bound.stdout
    assert _stops(bare) > 0 and _stops(bound) == _stops(bare), bare.stderr + bound.stderr
