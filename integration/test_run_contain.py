"""Containment under the path-translating engines, compared with runc (what Linux does).

An honest program in a Debian 12 container must not write outside the rootfs and its read-write
volumes through any route that resolves a path (issue 15, item 2): GNU tar extracting through an
absolute symlink of the container, dirfd-relative calls that cross an absolute symlink or climb
above the root, an absolute path with a dirfd, /proc/self/root and /proc/self/cwd, a write into a
`:ro` volume through a directory fd. Each route writes to a guest path that spells an existing
*host* directory made by the test: the host's copy must stay empty and the container's must hold
the file (or the call must fail with the errno runc gives). The ptrace engine also runs with
seccomp off and with --trace-dirfd. Reads through the image's own absolute symlinks show the
container's files (`tar -chf - -C /var run` lists the container's /run).

The Landlock backstop (where the kernel has it): a raw system call that the preload library cannot
see fails with EACCES instead of writing on the host; `hpcbox info` says whether it is active.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok

run_store = common.run_store  # fixtures

CC = shutil.which("cc") or shutil.which("gcc")

# Each route, then its result: "ok" or the errno's name. argv[1]: the host directory to aim at.
PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *dir;

static void report(const char *route, long fd)
{
    printf("%s %s\n", route, fd < 0 ? strerrorname_np(errno) : "ok");
    if (fd >= 0)
        close((int)fd);
}

static const char *at(const char *prefix, const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s%s/%s", prefix, dir, name);
    return buf;
}

int main(int argc, char **argv)
{
    int root, tmp, vol, ro;

    if (argc < 3)
        return 2;
    dir = argv[1];
    root = open("/", O_RDONLY | O_DIRECTORY);
    tmp = open("/tmp", O_RDONLY | O_DIRECTORY);
    vol = open("/vol", O_RDONLY | O_DIRECTORY);
    ro = open("/rovol", O_RDONLY | O_DIRECTORY);
    if (root < 0 || tmp < 0 || vol < 0 || ro < 0 || symlink(dir, "/abslink") < 0)
        return 3;
    if (strcmp(argv[2], "raw") == 0) { /* no libc wrapper: only a kernel backstop can stop it */
        report("raw-syscall", syscall(SYS_openat, AT_FDCWD, at("", "raw"), O_WRONLY | O_CREAT, 0644));
        return 0;
    }
    report("own-abs-symlink", openat(root, "abslink/a", O_WRONLY | O_CREAT, 0644));
    report("root-dotdot", openat(root, at("../..", "b"), O_WRONLY | O_CREAT, 0644));
    report("abs-with-dirfd", openat(tmp, at("", "c"), O_WRONLY | O_CREAT, 0644));
    report("proc-self-root", open(at("/proc/self/root", "d"), O_WRONLY | O_CREAT, 0644));
    report("vol-link-to-abs", openat(vol, "link/e", O_WRONLY | O_CREAT, 0644));
    report("proc-self-cwd-dotdot", open(at("/proc/self/cwd/../../../../..", "g"), O_WRONLY | O_CREAT, 0644));
    report("mkdirat-abs-symlink", mkdirat(root, "abslink/h", 0755));
    report("ro-volume", openat(ro, "f", O_WRONLY | O_CREAT, 0644));
    report("ro-volume-mkdirat", mkdirat(ro, "d", 0755));
    report("var-run-o-directory",
           openat(open("/var", O_RDONLY | O_DIRECTORY), "run", O_RDONLY | O_DIRECTORY));
    return 0;
}
"""

EXPECTED = {"own-abs-symlink": "ok", "root-dotdot": "ok", "abs-with-dirfd": "ok", "proc-self-root": "ok",
            "vol-link-to-abs": "ok", "proc-self-cwd-dotdot": "ok", "mkdirat-abs-symlink": "ok",
            "ro-volume": "EROFS", "ro-volume-mkdirat": "EROFS", "var-run-o-directory": "ok"}
IN_CONTAINER = ["a", "b", "c", "d", "e", "g", "h"]

# variant: (engine, `hpcbox setup --execmode` or None, extra environment of `hpcbox run`)
VARIANTS = {
    "runc": ("runc", None, {}),
    "ptrace": ("ptrace", None, {}),
    "ptrace-no-seccomp": ("ptrace", "P2", {}),
    "ptrace-trace-dirfd": ("ptrace", None, {"HPCBOX_PTRACE_TRACE_DIRFD": "1"}),
    "preload": ("preload", None, {}),
}


def _container(run_store, variant: str):
    """A new Debian 12 container for *variant*: (its id, the run options, the run environment)."""
    engine, execmode, extra = VARIANTS[variant]
    args = common.engine_args(run_store, engine)
    container = run_store.create("debian")
    if execmode:
        ok(run_store("setup", f"--execmode={execmode}", container))
        args = []  # the container's own mode
    return container, args, hpcbox_env(**extra)


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    if not CC:
        pytest.skip("no C compiler (cc) on PATH; install gcc")
    out = tmp_path_factory.mktemp("contain-probe")
    source = out / "probe.c"
    source.write_text(PROBE)
    subprocess.run([CC, "-O1", "-Wall", "-o", str(out / "probe"), str(source)], check=True)
    os.chmod(out, 0o755)
    return out


def _host_dirs(tmp_path: Path):
    """The host directory the routes aim at (must stay empty), a rw volume with a link to it, a ro volume."""
    os.chmod(tmp_path, 0o755)
    target, vol, rovol = tmp_path / "host-target", tmp_path / "vol", tmp_path / "rovol"
    for d in (target, vol, rovol):
        d.mkdir()
        os.chmod(d, 0o777)
    (vol / "link").symlink_to(target)
    return target, vol, rovol


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_route_writes_outside_the_rootfs(run_store, probe, tmp_path, variant):
    target, vol, rovol = _host_dirs(tmp_path)
    container, args, env = _container(run_store, variant)
    volumes = ["-v", f"{probe}:/probe:ro", "-v", f"{vol}:/vol", "-v", f"{rovol}:/rovol:ro"]
    script = f"mkdir -p {target} && /probe/probe {target} routes && ls {target}"
    proc = ok(run_store("run", *args, *volumes, "-w", "/", container, "sh", "-c", script, env=env))
    lines = proc.stdout.splitlines()
    results = dict(line.split(" ", 1) for line in lines if " " in line)
    assert results == EXPECTED, proc.stdout + proc.stderr
    assert sorted(line for line in lines if " " not in line) == IN_CONTAINER
    assert sorted(os.listdir(target)) == [], "written on the host"
    assert os.listdir(rovol) == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gnu_tar_through_absolute_symlinks_stays_in_the_container(run_store, tmp_path, variant):
    """The issue's own cases, with GNU tar: `tar -C / -xf` of scratch/f where /scratch is an absolute
    symlink of the container, and `tar -chf - -C /var run` through the image's /var/run -> /run."""
    target, _vol, _rovol = _host_dirs(tmp_path)
    container, args, env = _container(run_store, variant)
    script = (f"set -e; mkdir -p {target} /tmp/src/scratch; ln -s {target} /scratch; "
              "echo inside > /tmp/src/scratch/f; tar -C /tmp/src -cf /tmp/x.tar scratch/f; "
              "tar -C / -xf /tmp/x.tar; cat /scratch/f; "
              "echo --; tar -chf - -C /var run | tar -tf - | sed 's|/$||' | sort; "
              "echo --; find /run | sed 's|^/||' | sort")
    proc = ok(run_store("run", *args, container, "sh", "-c", script, env=env))
    extracted, listed, found = proc.stdout.split("--\n")
    assert extracted == "inside\n", proc.stdout + proc.stderr
    assert listed == found, f"tar through /var/run listed:\n{listed}\nfind /run:\n{found}"
    assert os.listdir(target) == [], "tar wrote on the host"


@pytest.mark.parametrize("engine", ["ptrace", "preload"])
def test_landlock_backstop_stops_what_translation_cannot_see(run_store, probe, tmp_path, engine):
    info = json.loads(ok(run_store("info", "--json")).stdout)
    backstop = info["landlock"]
    if backstop["reason"]:
        pytest.skip(f"no Landlock backstop here: {backstop['reason']}")
    assert backstop["engines"][engine] == info["engines"][engine]["available"]
    args = common.engine_args(run_store, engine)
    target, vol, rovol = _host_dirs(tmp_path)
    container = run_store.create("debian")
    volumes = ["-v", f"{probe}:/probe:ro", "-v", f"{vol}:/vol", "-v", f"{rovol}:/rovol:ro"]
    script = f"mkdir -p {target} && /probe/probe {target} raw && echo to-stdout >> /dev/stdout"
    out_file = tmp_path / "stdout.txt"
    with open(out_file, "w") as out:  # stdout on a host file: reopening /dev/stdout must still work
        proc = subprocess.run([sys.executable, "-m", "hpcbox", "--home", str(run_store.home), "run", *args,
                               *volumes, container, "sh", "-c", script], stdout=out, stderr=subprocess.PIPE,
                              text=True, timeout=300, env=hpcbox_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    lines = out_file.read_text().splitlines()
    if engine == "preload":  # the raw openat reaches the kernel with the host path: Landlock refuses it
        assert lines == ["raw-syscall EACCES", "to-stdout"], lines
    else:  # the tracer sees every syscall: the raw one is translated like any other
        assert lines == ["raw-syscall ok", "to-stdout"], lines
    assert os.listdir(target) == [], "written on the host"
    text = ok(run_store("info")).stdout
    assert "Landlock backstop: " in text and f"{engine} active" in text, text
