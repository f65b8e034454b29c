"""The builtin runner as `hpcbox info` sees it: its --version (the package's version and the
architecture it was built for), and a runner that cannot run here named with the reason."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

from hpcbox_engine_runc import __version__, engine
from hpcbox_engine_runc._engine import runner_path

OTHER = "x86_64" if os.uname().machine == "aarch64" else "aarch64"


def other_machines_program(path: Path) -> Path:
    """An ELF64 header of a program built for another architecture (aarch64 here, x86_64 there)."""
    machine = {"x86_64": 62, "aarch64": 183}[OTHER]
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9)
                     + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0))
    path.chmod(0o755)
    return path


def test_the_runner_tells_its_version_and_architecture():
    done = subprocess.run([str(runner_path()), "--version"], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, f"hpcbox-userns {__version__} ({os.uname().machine})\n")


def test_a_runner_for_another_machine_is_named_with_the_reason(tmp_path, monkeypatch):
    other_machines_program(tmp_path / "hpcbox-userns")
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    ok, reason = engine.available()
    assert not ok
    assert reason == (f"the runner cannot run: {tmp_path}/hpcbox-userns (set by HPCBOX_LIBEXEC_DIR) is built "
                      f"for {OTHER}, but this machine is {os.uname().machine}; reinstall hpcbox-engine-runc "
                      "(the wheel for this machine)")


def test_the_runner_is_named_before_the_sysctls(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    (proc / "sys/user").mkdir(parents=True)
    (proc / "sys/user/max_user_namespaces").write_text("0\n")
    other_machines_program(tmp_path / "hpcbox-userns")
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    ok, reason = engine.available(proc_root=str(proc))
    assert not ok and reason.startswith(f"the runner cannot run: {tmp_path}/hpcbox-userns "), reason


def test_a_missing_runner_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    ok, reason = engine.available()
    assert not ok and f"{tmp_path}/hpcbox-userns (set by HPCBOX_LIBEXEC_DIR) is missing" in reason, reason
