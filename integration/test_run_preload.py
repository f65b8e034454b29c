"""`hpcbox run --engine preload` specifics through the CLI, as the calling user: udocker's F1..F4 modes
(`hpcbox setup --execmode`), volumes that are single files or lie under missing directories, a program
that clears its environment, and HPCBOX_DEBUG. (Every generic `hpcbox run` test also runs with the
preload engine: test_run_debian.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian


@pytest.fixture
def preload_args(run_store):
    return common.engine_args(run_store, "preload")


def test_execmodes_f1_to_f4_run_with_the_preload_engine(run_store, preload_args):
    cid = run_store.create("debian")
    try:
        for mode in ("F1", "F2", "F3", "F4"):
            ok(run_store("setup", f"--execmode={mode}", cid))
            # the library is loaded (its variables are hidden from the program's environment, also in
            # /proc/PID/environ, and `id` shows root's groups only)
            script = ("grep -q libhpcbox-preload /proc/self/maps && echo preload; "
                      "env | grep -c ^HPCBOX_PRELOAD_; readlink /proc/self/exe; "
                      "tr '\\0' '\\n' < /proc/self/environ | grep -c ^HPCBOX_PRELOAD_; "
                      "tr '\\0' '\\n' < /proc/$$/environ | grep -c ^HPCBOX_PRELOAD_; id")
            proc = ok(run_store("run", cid, "sh", "-c", script))
            assert proc.stdout.splitlines() == ["preload", "0", "/usr/bin/readlink", "0", "0",
                                                "uid=0(root) gid=0(root) groups=0(root)"], proc.stderr
        ps = {c["id"]: c for c in json.loads(ok(run_store("ps", "--json")).stdout)}
        assert ps[cid]["execmode"] == "F4" and ps[cid]["settings"]["engine"] == "preload"
    finally:
        ok(run_store("rm", "-f", cid))


def test_file_volumes_and_volumes_below_missing_directories(run_store, shared_debian, preload_args, tmp_path):
    (tmp_path / "note.txt").write_text("a file volume\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "x").write_text("deep\n")
    tmp_path.chmod(0o755)
    script = ("cat /etc/note.txt; cat /mnt/a/b/x; cd /mnt/a/b && pwd && cat x; "
              "echo new > /mnt/a/b/y; realpath /mnt/a/b/y")
    proc = ok(run_store("run", *preload_args, "-v", f"{tmp_path / 'note.txt'}:/etc/note.txt:ro",
                        "-v", f"{data}:/mnt/a/b", shared_debian, "bash", "-c", script))
    assert proc.stdout.splitlines() == ["a file volume", "deep", "/mnt/a/b", "deep", "/mnt/a/b/y"]
    assert (data / "y").read_text() == "new\n"


def test_cleared_environment_and_debug_lines(run_store, shared_debian, preload_args):
    proc = ok(run_store("run", *preload_args, shared_debian, "env", "-i", "/bin/sh", "-c",
                        "cat /etc/debian_version; ls -d /usr/share/doc"))
    assert proc.stdout.splitlines()[0].startswith("12.") and proc.stdout.splitlines()[1] == "/usr/share/doc"
    script = "ls /nonexistent/x; true"  # ls's stderr is the one the debug lines go to
    debug = hpcbox_env(HPCBOX_DEBUG="1")
    proc = ok(run_store("run", *preload_args, shared_debian, "sh", "-c", script, env=debug))
    assert "hpcbox-preload: exec /usr/bin/ls (" in proc.stderr  # through the container's loader
    assert "hpcbox-preload: /nonexistent/x: No such file or directory" in proc.stderr


def test_processes_started_inside_get_canonical_host_paths(run_store, shared_debian, preload_args, tmp_path):
    """The first process resolves the rootfs and volume host paths (realpath) once and hands the
    canonical paths, with their tag, to the processes it starts, which then skip realpath: a volume
    reached through a host symlink keeps working two execs down."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "x").write_text("through a link\n")
    (tmp_path / "link").symlink_to(data)
    tmp_path.chmod(0o755)
    # the variables are hidden from environ and /proc/PID/environ: the debug lines say what was taken
    script = "cat /mnt/v/x; sh -c 'cat /mnt/v/x'"
    volume = f"{tmp_path / 'link'}:/mnt/v"
    proc = ok(run_store("run", *preload_args, "-v", volume, shared_debian, "sh", "-c", script,
                        env=hpcbox_env(HPCBOX_DEBUG="1")))
    assert proc.stdout.splitlines() == ["through a link", "through a link"], proc.stderr
    assert f"hpcbox-preload: volume /mnt/v={data.resolve()} (canonical, from the parent)" in proc.stderr


def test_libc_reads_the_containers_timezone(run_store, preload_args):
    """glibc opens /etc/localtime inside itself (no wrapped call): the first process points TZ at the
    container's file, unless the container sets TZ itself."""
    zone = Path("/usr/share/zoneinfo/Asia/Kolkata")
    if not zone.is_file():
        pytest.skip("the host has no tzdata to copy a zone from")
    cid = run_store.create("debian")
    try:
        containers = json.loads(ok(run_store("ps", "--json")).stdout)
        [rootfs] = [Path(c["rootfs"]) for c in containers if c["id"] == cid]
        localtime = rootfs / "etc/localtime"
        if localtime.is_symlink() or localtime.exists():
            localtime.unlink()
        shutil.copyfile(zone, localtime)  # not the host's zone (UTC or whatever it is)
        proc = ok(run_store("run", *preload_args, cid, "sh", "-c", 'date +%Z; sh -c "date +%Z"; echo "$TZ"'))
        lines = proc.stdout.splitlines()
        assert lines[:2] == ["IST", "IST"], proc.stderr
        assert lines[2].startswith(":/") and lines[2].endswith("/etc/localtime")
        proc = ok(run_store("run", *preload_args, "-e", "TZ=UTC", cid, "date", "+%Z"))
        assert proc.stdout == "UTC\n"
    finally:
        ok(run_store("rm", "-f", cid))
