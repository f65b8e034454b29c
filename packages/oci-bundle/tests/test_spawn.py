"""spawn.Spawned starts a program as subprocess.Popen(argv, env=env) would, without subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from hpcbox_oci_bundle import spawn as _spawn

pytestmark = pytest.mark.skipif(not _spawn.available(), reason="no os.fork here")


def _both(code: str, env=None):
    """(Popen's, Spawned's) return code and the child's output file, for the same program."""
    results = []
    for how in ("popen", "spawn"):
        argv = [sys.executable, "-c", code]
        environment = dict(env or {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        if how == "popen":
            process = subprocess.Popen(argv, env=environment)
        else:
            process = _spawn.Spawned(argv, environment)
        results.append(process.wait())
    return results


@pytest.mark.parametrize("code", ["pass", "raise SystemExit(3)", "import os; os.kill(os.getpid(), 9)"])
def test_status_as_popen(code):
    popen, spawned = _both(code)
    assert popen == spawned


def _seen(tmp_path, make, shell_code: str, env: dict) -> str:
    out = tmp_path / "seen"
    make(["/bin/sh", "-c", f"{shell_code} > {out}"], env).wait()
    return out.read_text()


def _popen(argv, env):
    return subprocess.Popen(argv, env=env)


def test_environment_is_exactly_the_one_given(tmp_path):
    env = {"A": "1", "B": "two words", "PATH": "/usr/bin:/bin"}
    seen = _seen(tmp_path, _spawn.Spawned, "/usr/bin/env", env)
    assert seen == _seen(tmp_path, _popen, "/usr/bin/env", env)
    assert "A=1" in seen.splitlines() and "HOME=" not in seen


def test_signal_dispositions_as_popen_leaves_them(tmp_path):
    """SIGPIPE and SIGXFSZ, which Python ignores, are back at their default action in the child."""
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # Python's own setting
    code = "grep -E '^Sig(Ign|Blk)' /proc/self/status"
    seen = _seen(tmp_path, _spawn.Spawned, code, {})
    assert seen == _seen(tmp_path, _popen, code, {})
    ignored = int(seen.split("SigIgn:")[1].split()[0], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))


def test_no_descriptor_but_the_standard_ones(tmp_path):
    stray = os.dup2(os.open(os.devnull, os.O_RDONLY), 200, inheritable=True)
    try:
        code = "ls /proc/self/fd"
        seen = _seen(tmp_path, _spawn.Spawned, code, {"PATH": "/usr/bin:/bin"})
        assert seen == _seen(tmp_path, _popen, code, {"PATH": "/usr/bin:/bin"})
    finally:
        os.close(stray)
    assert "200" not in seen.split()


def test_poll_wait_and_signals():
    process = _spawn.Spawned(["/bin/sleep", "30"], {})
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait() == -signal.SIGTERM
    assert process.poll() == -signal.SIGTERM
    process.send_signal(signal.SIGTERM)  # after the end: nothing is sent, nothing raised


def test_a_missing_program_raises_like_popen():
    with pytest.raises(FileNotFoundError):
        subprocess.Popen(["/nonexistent/runner"], env={})
    with pytest.raises(FileNotFoundError):
        _spawn.Spawned(["/nonexistent/runner"], {})
