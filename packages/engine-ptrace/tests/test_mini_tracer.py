"""The minimal seccomp+ptrace tracer (csrc/tracer/mini_tracer.c) runs a static busybox in a rootfs.

It is not wired into hpcbox yet; these tests pin what it already does, as the unprivileged user
that runs the suite: path syscalls of the program and of its forked children are translated into
the rootfs (symlinks and ".." with guest semantics, bindings), errors come back as the kernel's,
getcwd answers with the guest path, and exit codes and fatal signals pass through.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
STRICT = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _is_static_elf(path: str) -> bool:
    """True for an x86_64 ELF without PT_INTERP (the tracer cannot load a guest interpreter yet)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return False
            phoff, = struct.unpack_from("<Q", head, 32)
            phentsize, phnum = struct.unpack_from("<HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


pytestmark = [
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="the minimal tracer knows x86_64 only"),
    pytest.mark.skipif(CC is None, reason="no C compiler (cc/gcc) on PATH; install gcc"),
    pytest.mark.skipif(not _is_static_elf(BUSYBOX), reason="needs a static busybox (Debian: busybox-static)"),
]


@pytest.fixture(scope="module")
def tracer(tmp_path_factory, guestpath_dir):
    src = PACKAGE / "csrc" / "tracer" / "mini_tracer.c"
    gp = guestpath_dir
    exe = tmp_path_factory.mktemp("tracer") / "hpcbox-ptrace-mini"
    subprocess.run([CC, *STRICT, f"-I{gp}", "-o", str(exe), str(src), str(gp / "guestpath.c")], check=True)
    return exe


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rootfs")
    for d in ("bin", "etc", "usr/lib", "tmp"):
        (root / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "cat", "ls", "test", "true", "kill", "echo"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc/hostname").write_text("guest-hostname\n")
    (root / "abs").symlink_to("/etc/hostname")  # absolute: must stay inside the rootfs
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib/marker").write_text("in usr/lib\n")
    return root


def run(tracer, rootfs, *argv, binds=()):
    cmd = [str(tracer)]
    for guest, host in binds:
        cmd += ["-b", f"{guest}:{host}"]
    proc = subprocess.run([*cmd, str(rootfs), *argv], capture_output=True, text=True, timeout=60,
                          check=False, cwd="/")
    if proc.returncode == 125 and "Operation not permitted" in proc.stderr:
        pytest.skip(f"ptrace or seccomp is not allowed here: {proc.stderr.strip()}")
    return proc


def test_open_is_translated_into_the_rootfs(tracer, rootfs):
    proc = run(tracer, rootfs, "/bin/cat", "/etc/hostname")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "guest-hostname\n"


def test_listing_the_guest_root(tracer, rootfs):
    proc = run(tracer, rootfs, "/bin/ls", "/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == sorted(os.listdir(rootfs))


def test_symlinks_and_dotdot_have_guest_semantics(tracer, rootfs):
    script = "cat /abs; cat /../../../etc/hostname; cat /lib/marker; cd /usr && cat ../lib/marker"
    proc = run(tracer, rootfs, "/bin/sh", "-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "guest-hostname\n" * 2 + "in usr/lib\n" * 2


def test_stat_and_access_see_the_guest(tracer, rootfs):
    outside = "/" + next(n for n in sorted(os.listdir("/")) if not os.path.lexists(rootfs / n))
    proc = run(tracer, rootfs, "/bin/sh", "-c",
               f"test -e /usr/lib/marker && echo has-marker; test -e {outside} || echo no-{outside[1:]}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"has-marker\nno-{outside[1:]}\n"


def test_forked_children_are_traced(tracer, rootfs):
    proc = run(tracer, rootfs, "/bin/sh", "-c", "cat /etc/hostname | cat | cat")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "guest-hostname\n"


def test_missing_intermediate_is_enoent(tracer, rootfs):
    proc = run(tracer, rootfs, "/bin/cat", "/nope/x")
    assert proc.returncode == 1
    assert "No such file or directory" in proc.stderr


def test_exit_codes_and_signals_pass_through(tracer, rootfs):
    assert run(tracer, rootfs, "/bin/sh", "-c", "exit 7").returncode == 7
    assert run(tracer, rootfs, "/bin/sh", "-c", "kill -9 $$").returncode == 128 + 9


def test_bindings(tracer, rootfs, tmp_path):
    (tmp_path / "f").write_text("from the host\n")
    proc = run(tracer, rootfs, "/bin/cat", "/data/f", binds=[("/data", tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "from the host\n"


def test_getcwd_gives_the_guest_path(tracer, rootfs, tmp_path):
    # PWD=/x makes busybox's pwd ask the kernel (getcwd) instead of trusting $PWD.
    script = "; ".join(f"cd {d} && PWD=/x /bin/busybox pwd" for d in ("/usr/lib", "/data", "/"))
    proc = run(tracer, rootfs, "/bin/sh", "-c", script, binds=[("/data", tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "/usr/lib\n/data\n/\n"


def test_bad_usage_is_refused(tracer, rootfs, tmp_path):
    proc = run(tracer, tmp_path / "absent", "/bin/true")
    assert proc.returncode == 125
    assert "rootfs" in proc.stderr and "No such file" in proc.stderr
    proc = subprocess.run([str(tracer)], capture_output=True, text=True, check=False)
    assert proc.returncode == 125 and "usage:" in proc.stderr
