"""The launcher and the libraries as `hpcbox info` sees them: the launcher's --version (the
package's version and the architecture it was built for), and whichever of them cannot be used here
(another architecture, missing) named with the reason, the launcher first."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hpcbox_engine_preload import __version__, _native, engine

OTHER = "x86_64" if os.uname().machine == "aarch64" else "aarch64"
FIX = "; reinstall hpcbox-engine-preload (the wheel for this machine)"
HERE = os.uname().machine


def other_machines_elf(path: Path) -> Path:
    """An ELF64 header of a file built for another architecture (aarch64 here, x86_64 there)."""
    machine = {"x86_64": 62, "aarch64": 183}[OTHER]
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9)
                     + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0))
    path.chmod(0o755)
    return path


@pytest.fixture
def libexec(tmp_path, monkeypatch) -> Path:
    """A HPCBOX_LIBEXEC_DIR holding this package's own launcher and glibc library."""
    for name in (_native.LAUNCHER, _native.PRELOAD_LIBRARY):
        shutil.copy2(_native.HERE / name, tmp_path / name)
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    return tmp_path


def test_the_launcher_tells_its_version_and_architecture():
    done = subprocess.run([str(_native.launcher_path()), "--version"], capture_output=True, text=True,
                          check=False)
    assert (done.returncode, done.stdout) == (0, f"hpcbox-preload-exec {__version__} ({HERE})\n")


def test_the_copied_helpers_serve(libexec):
    ok, reason = engine.available()
    assert ok, reason


@pytest.mark.parametrize("name", [_native.LAUNCHER, _native.PRELOAD_LIBRARY, _native.PRELOAD_LIBRARY_MUSL])
def test_a_helper_for_another_machine_is_named_with_the_reason(libexec, name):
    other_machines_elf(libexec / name)
    ok, reason = engine.available()
    where = f"{libexec}/{name} (set by HPCBOX_LIBEXEC_DIR)"
    assert (ok, reason) == (False, f"{where} is built for {OTHER}, but this machine is {HERE}{FIX}")


def test_a_missing_launcher_is_named_before_the_library(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    ok, reason = engine.available()
    missing = f"{tmp_path}/{_native.LAUNCHER} (set by HPCBOX_LIBEXEC_DIR) is missing"
    assert (ok, reason) == (False, missing + FIX)


def test_a_missing_library_is_named(libexec):
    (libexec / _native.PRELOAD_LIBRARY).unlink()
    ok, reason = engine.available()
    missing = f"{libexec}/{_native.PRELOAD_LIBRARY} (set by HPCBOX_LIBEXEC_DIR) is missing"
    assert (ok, reason) == (False, missing + FIX)
