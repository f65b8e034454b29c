"""Exact Linux path semantics under the path-translating engines, with runc as the reference.

A perl probe (hpcbox_testing/paths_probe.pl) makes a small tree in the container's /tmp and calls
rmdir, unlink, mkdir, rename, symlink, link, open and stat with final ".", "..", trailing "/",
symlinks followed by "/", and "/" or "/.." themselves, printing each result or errno and the tree
left behind. Under ptrace and preload the output must be the same as under runc, which hands the
kernel the program's own paths; a few lines are also checked against what Linux documents, so
that the test keeps its teeth where runc cannot run. A second probe (moves_probe.pl and a C mknod
probe) does the same for volumes, which are mounts under runc: rename and link between them,
removing or renaming their roots, and mknod for an ordinary user.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok

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


MOVES_PROBE = (Path(__file__).parent / "hpcbox_testing" / "moves_probe.pl").read_text()
E = {name: f"errno {getattr(errno, name)}"
     for name in ("EXDEV", "EBUSY", "ENOENT", "EISDIR", "ENOTDIR", "EEXIST", "EINVAL", "ENOTEMPTY", "EPERM",
                  "EROFS")}

# What Linux does with volumes as bind mounts (rename(2), link(2), rmdir(2), unlink(2)): a rename or
# link between two mounts is EXDEV, checked right after the two directories are looked up (before
# EBUSY for a final "." or "..", before ENOENT for a missing source), after link's EEXIST; renaming a
# mount point is EBUSY after the kernel's own checks (lookups, trailing "/", file onto directory).
LINUX_MOVES = {
    "rename /vol/a /tmp": E["EXDEV"], "rename /tmp /vol/f": E["EXDEV"], "rename /vol/a /vol2/a": E["EXDEV"],
    "rename /vol/nosuch /tmp": E["EXDEV"], "rename /vol/. /tmp": E["EXDEV"],
    "rename /vol/.. /tmp": E["EXDEV"],
    "rename /tmp /vol/..": E["EXDEV"], "rename /vol/. /vol/b": E["EBUSY"], "rename /vol/a /vol/b": "ok",
    "rename /vol /x": E["EBUSY"], "rename /vol/ /x": E["EBUSY"], "rename /vol /nodir/x": E["ENOENT"],
    "rename /vol /vol2": E["EBUSY"], "rename file /vol": E["EISDIR"], "rename dir /vol": E["EBUSY"],
    "rename /vol/a /volf": E["EXDEV"], "rename dir /volf": E["ENOTDIR"], "rename file /volf": E["EBUSY"],
    "rename /volf /volf": "ok", "rename /volf/ /x": E["ENOTDIR"],
    "link /vol/a /tmp": E["EXDEV"], "link /tmp /vol/l": E["EXDEV"], "link /vol/a /vol/l": "ok",
    "link /vol/nosuch /tmp": E["ENOENT"], "link /vol/a /tmp existing": E["EEXIST"],
    "link /volf /tmp": E["EXDEV"], "link nosuch file/x": E["ENOENT"],  # old is looked up first
    "creat dir/": E["EISDIR"], "creat file/": E["EISDIR"], "creat new/": E["EISDIR"],
    "creat nodir/x/": E["ENOENT"],
    # a read-only mount: rename's EXDEV before EROFS, EROFS before the last name is looked up; link's
    # EEXIST, then EROFS of the new name's mount, then EXDEV; rmdir EROFS before ENOENT, unlink after it
    "rename /volro/r /tmp": E["EXDEV"], "rename /tmp /volro/x": E["EXDEV"],
    "rename /volro/r /volro/x": E["EROFS"], "rename /volro/nosuch /volro/x": E["EROFS"],
    "link /volro/r /tmp": E["EXDEV"], "link /tmp /volro/l": E["EROFS"], "link /volro/r /volro/l": E["EROFS"],
    "link /tmp /volro/r existing": E["EEXIST"], "unlink /volro/r": E["EROFS"],
    "unlink /volro/nosuch": E["ENOENT"], "rmdir /volro/nosuch": E["EROFS"],
    # linkat(fd, "", ..., AT_EMPTY_PATH): the descriptor's file is old, on the mount it was opened on
    "linkat fd /vol/a /tmp": E["EXDEV"], "linkat fd /tmp /vol/l": E["EXDEV"],
    "linkat fd /tmp /volro/l": E["EROFS"], "linkat fd /vol/a /vol/l": "ok",
    "rmdir /vol": E["EBUSY"], "rmdir /vol/.": E["EINVAL"], "rmdir /vol/..": E["ENOTEMPTY"],
    "unlink /vol": E["EISDIR"], "unlink /volf": E["EBUSY"], "rmdir /volf": E["ENOTDIR"],
    "mv /vol/a /tmp": "moved", "in /vol": "a",
}

# mknod for an ordinary user (uid 1000): no device node without CAP_MKNOD (EPERM, after the path's
# own errors), FIFOs, sockets and regular files of their real type.
LINUX_MKNOD_USER = {
    "mknod chr": "EPERM none", "mknod blk": "EPERM none", "mknod fifo": "ok fifo", "mknod sock": "ok sock",
    "mknod reg": "ok reg", "mknod none": "ok reg", "mknodat chr": "EPERM none",
    "mknod chr over a file": "EEXIST reg", "mknod fifo over a file": "EEXIST reg",
    "mknod chr in a missing dir": "ENOENT none", "mknod chr in a volume": "EPERM none",
}

# linkat(fd, "", AT_FDCWD, new, AT_EMPTY_PATH) through libc (a preload engine sees only libc calls),
# as container root, after the moves probe: the descriptor's own file is old.
FLINK_PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static void flink(const char *name, const char *from, const char *to)
{
    int fd = open(from, O_RDONLY), rc;

    unlink(to);
    rc = fd < 0 ? -1 : linkat(fd, "", AT_FDCWD, to, AT_EMPTY_PATH);
    if (rc < 0)
        printf("%s: errno %d\n", name, errno);
    else
        printf("%s: ok\n", name);
    if (fd >= 0)
        close(fd);
    unlink(to);
}

int main(void)
{
    flink("linkat fd /vol/a /tmp", "/vol/a", "/tmp/hpcbox-moves-probe/l");
    flink("linkat fd /tmp /vol/l", "/tmp/hpcbox-moves-probe/f", "/vol/l");
    flink("linkat fd /tmp /volro/l", "/tmp/hpcbox-moves-probe/f", "/volro/l");
    flink("linkat fd /vol/a /vol/l", "/vol/a", "/vol/l");
    return 0;
}
"""

MKNOD_PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static void made(const char *name, const char *path, int rc)
{
    struct stat st;
    const char *type = "none";

    printf("%s: %s ", name, rc < 0 ? strerrorname_np(errno) : "ok");
    if (lstat(path, &st) == 0)
        type = S_ISCHR(st.st_mode) ? "chr" : S_ISBLK(st.st_mode) ? "blk" : S_ISFIFO(st.st_mode) ? "fifo"
             : S_ISSOCK(st.st_mode) ? "sock" : S_ISREG(st.st_mode) ? "reg" : "other";
    printf("%s\n", type);
}

int main(void)
{
    const char *t = "/tmp/hpcbox-mknod-probe";

    if (mkdir(t, 0755) < 0 || chdir(t) < 0 || close(open("f", O_CREAT | O_WRONLY, 0644)) < 0)
        return 3;
    made("mknod chr", "c", mknod("c", S_IFCHR | 0644, makedev(1, 3)));
    made("mknod blk", "b", mknod("b", S_IFBLK | 0644, makedev(7, 0)));
    made("mknod fifo", "p", mknod("p", S_IFIFO | 0644, 0));
    made("mknod sock", "s", mknod("s", S_IFSOCK | 0644, 0));
    made("mknod reg", "r", mknod("r", S_IFREG | 0644, 0));
    made("mknod none", "z", mknod("z", 0644, 0));
    made("mknodat chr", "c2", mknodat(AT_FDCWD, "c2", S_IFCHR | 0644, makedev(1, 3)));
    made("mknod chr over a file", "f", mknod("f", S_IFCHR | 0644, makedev(1, 3)));
    made("mknod fifo over a file", "f", mknod("f", S_IFIFO | 0644, 0));
    made("mknod chr in a missing dir", "nodir/c", mknod("nodir/c", S_IFCHR | 0644, makedev(1, 3)));
    made("mknod chr in a volume", "/vol/c", mknod("/vol/c", S_IFCHR | 0644, makedev(1, 3)));
    return 0;
}
"""


@pytest.fixture(scope="module")
def mknod_probe(tmp_path_factory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler (cc) on PATH; install gcc")
    out = tmp_path_factory.mktemp("mknod-probe")
    for name, source in (("probe", MKNOD_PROBE), ("flink", FLINK_PROBE)):
        (out / f"{name}.c").write_text(source)
        subprocess.run([cc, "-O1", "-Wall", "-o", str(out / name), str(out / f"{name}.c")], check=True)
    os.chmod(out, 0o755)
    return out


def run_probe(store, engine: str, tmp_path: Path, user: list, program: list) -> dict:
    """*program*'s "name: result" lines in a Debian 12 container of *engine* with volumes /vol, /vol2
    (directories), /volf (a file) and /volro (a read-only directory holding r) from new host paths
    under *tmp_path*."""
    tmp_path.mkdir(exist_ok=True)
    os.chmod(tmp_path, 0o755)
    vol, vol2, volf, volro = tmp_path / "vol", tmp_path / "vol2", tmp_path / "volf", tmp_path / "volro"
    for d in (vol, vol2, volro):
        d.mkdir()
        os.chmod(d, 0o777)
    volf.write_text("x")
    (volro / "r").write_text("r")
    proc = ok(store("run", *common.engine_args(store, engine), *user, "--rm", "-v", f"{vol}:/vol",
                    "-v", f"{vol2}:/vol2", "-v", f"{volf}:/volf", "-v", f"{volro}:/volro:ro", *program))
    return dict(line.split(": ", 1) for line in proc.stdout.splitlines())


def probes(store, engine: str, tmp_path: Path, mknod_dir: Path) -> tuple:
    moves = run_probe(store, engine, tmp_path / "moves", [],
                      ["-v", f"{mknod_dir}:/probe:ro", "debian", "sh", "-c", 'perl -e "$1" && /probe/flink',
                       "sh", MOVES_PROBE])
    mknod = run_probe(store, engine, tmp_path / "mknod", ["--user", "1000:1000"],
                      ["-v", f"{mknod_dir}:/probe:ro", "debian", "/probe/probe"])
    return moves, mknod


@pytest.fixture(scope="module")
def moves_reference(run_store, mknod_probe, tmp_path_factory) -> tuple:
    """The probes' output under runc (real bind mounts), or () without runc."""
    try:
        return probes(run_store, "runc", tmp_path_factory.mktemp("moves-runc"), mknod_probe)
    except pytest.skip.Exception:
        return ()


@pytest.mark.parametrize("engine", ["runc", "ptrace", "preload"])
def test_volume_roots_and_moves_between_volumes_as_linux(run_store, moves_reference, mknod_probe, tmp_path,
                                                        engine):
    """rename/link/rmdir/unlink at and across volumes (EXDEV, EBUSY and their order), and mknod for
    an ordinary user: the same results as runc's real bind mounts, and as Linux documents."""
    if engine == "runc" and not moves_reference:
        pytest.skip("the runc engine is not available here")
    moves, mknod = moves_reference if engine == "runc" else probes(run_store, engine, tmp_path, mknod_probe)
    assert moves == LINUX_MOVES
    assert mknod == LINUX_MKNOD_USER
    if moves_reference:
        assert (moves, mknod) == moves_reference


WALK_SCRIPT = r"""
echo v > /vol/v
echo "find: $(find / -maxdepth 2 -path '/vol*' | sort | tr '\n' ' ')"
echo "tar: $(tar -C / -cf - vol/v | tar -tf - | tr '\n' ' ')"
"""


@pytest.mark.parametrize("variant", ["runc", "ptrace", "ptrace-trace-dirfd", "preload"])
def test_walks_from_a_parent_directory_enter_volumes(run_store, tmp_path, variant):
    """`find /` and `tar -C / -cf - vol/v` (names relative to a descriptor of "/") see the volume's
    files, as with a mount. The ptrace engine's seccomp fast path included: descriptors of guest
    directories above a binding move into a reserved range whose calls the tracer translates."""
    engine, _, mode = variant.partition("-")
    env = hpcbox_env(HPCBOX_PTRACE_TRACE_DIRFD="1") if mode else hpcbox_env()
    os.chmod(tmp_path, 0o755)
    vol = tmp_path / "vol"
    vol.mkdir()
    os.chmod(vol, 0o777)
    proc = ok(run_store("run", *common.engine_args(run_store, engine), "--rm", "-v", f"{vol}:/vol", "debian",
                        "sh", "-c", WALK_SCRIPT, env=env))
    assert proc.stdout.splitlines() == ["find: /vol /vol/v ", "tar: vol/v "], proc.stdout + proc.stderr
