"""`hpcbox run --runtime runc` on the core cases, and the runc engine when user namespaces are disabled."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok, one_error

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian
MAX_USERNS = Path("/proc/sys/user/max_user_namespaces")
INPUTS = Path(os.environ.get("HPCBOX_TEST_INPUTS", "/var/cache/hpcbox-test-inputs"))

needs_runc = pytest.mark.skipif(not common.runc_installed(), reason="runc is not installed")


@needs_runc
def test_runc_runtime_core_cases(run_store, shared_debian, tmp_path):
    proc = ok(run_store("run", "--runtime", "runc", shared_debian, "cat", "/etc/debian_version"))
    assert proc.stdout.startswith("12.")
    proc = ok(run_store("run", "--runtime", "runc", "-w", "/tmp", "-e", "A=b", "--hostname", "rbox",
                        shared_debian, "sh", "-c", 'pwd; echo "$A"; hostname; id -u'))
    assert proc.stdout.splitlines() == ["/tmp", "b", "rbox", "0"]
    error = one_error(run_store("run", "--runtime", "crun", shared_debian, "true"))
    if not common.runc_installed() or "crun" in error:
        assert "crun" in error


@needs_runc
def test_runc_runtime_dpkg_install(run_store):
    deb = INPUTS / "hello.deb"
    if not deb.is_file():
        pytest.skip(f"{deb} is missing; run `sudo scripts/prepare-test-inputs` first")
    proc = ok(run_store("run", "--rm", "--runtime", "runc", "-v", f"{deb}:/tmp/hello.deb:ro", "debian",
                        "sh", "-c", "dpkg -i /tmp/hello.deb >/dev/null && hello"))
    assert proc.stdout == "Hello, world!\n", proc.stderr


@needs_runc
def test_setup_r2_delegates_to_runc(run_store):
    cid = run_store.create("busybox")
    try:
        ok(run_store("setup", "--execmode=R2", cid))
        # under runc the program is pid 1 of a new pid namespace; the builtin runner gives the same
        proc = ok(run_store("run", cid, "busybox", "sh", "-c", "echo $$; busybox cat /proc/1/cmdline"))
        assert proc.stdout.splitlines()[0] == "1"
        config = json.loads((Path(run_store.home) / "containers" / cid / "config.json").read_text())
        assert config["annotations"]["org.hpcbox.runc.runtime"] == "runc"
    finally:
        ok(run_store("rm", "-f", cid))


@contextlib.contextmanager
def _userns_disabled():
    before = MAX_USERNS.read_text()
    MAX_USERNS.write_text("0\n")
    try:
        yield
    finally:
        MAX_USERNS.write_text(before)


def test_run_fails_with_the_reason_when_user_namespaces_are_disabled(run_store, shared_debian):
    if os.geteuid() != 0:
        pytest.skip("needs root to set user.max_user_namespaces=0; the unprivileged variant below covers it")
    if not os.access(MAX_USERNS, os.W_OK):
        pytest.skip(f"{MAX_USERNS} is read-only here")
    with _userns_disabled():
        proc = run_store("run", "--engine", "runc", shared_debian, "true")
        info = json.loads(ok(run_store("info", "--json")).stdout)
    assert MAX_USERNS.read_text().strip() != "0"
    error = one_error(proc, 125)
    assert "engine runc is not available: " in error
    assert "user.max_user_namespaces=0" in error
    assert info["engines"]["runc"]["available"] is False
    assert info["auto"] in (None, "preload", "ptrace")  # another engine, once one works here
    ok(run_store("run", "--engine", "runc", shared_debian, "true"))


def test_run_fails_with_the_reason_in_a_namespace_that_forbids_user_namespaces(run_store, shared_debian):
    """Unprivileged variant: user.max_user_namespaces is per user namespace, so a child namespace
    (with its own /proc) can set it to 0 for everything started inside it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    inner = 'echo 0 > /proc/sys/user/max_user_namespaces || exit 99; exec "$@"'
    argv = [unshare, "-U", "-r", "-m", "-p", "-f", "--mount-proc", "sh", "-c", inner, "sh",
            sys.executable, "-m", "hpcbox", "--home", str(run_store.home)]
    probe = subprocess.run([*argv[:-5], "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a child user namespace with its own /proc here ({probe.stderr.strip()})")
    proc = subprocess.run([*argv, "run", "--engine", "runc", shared_debian, "true"], capture_output=True,
                          text=True, env=hpcbox_env(), timeout=120, check=False)
    error = one_error(proc, 125)
    assert "engine runc is not available: user namespaces are disabled: user.max_user_namespaces=0" in error
    proc = subprocess.run([*argv, "info", "--json"], capture_output=True, text=True, env=hpcbox_env(),
                          timeout=120, check=False)
    info = json.loads(ok(proc).stdout)
    assert info["engines"]["runc"]["available"] is False
    assert "max_user_namespaces=0" in info["engines"]["runc"]["reason"]
    assert info["auto"] in (None, "preload", "ptrace")  # another engine, once one works here
