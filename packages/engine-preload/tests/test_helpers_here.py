"""The launcher and the libraries as `hpcbox info` sees them: the launcher's --version (the
package's version and the architecture it was built for), and whichever of them cannot be used here
(another architecture, missing) named with the reason, the launcher first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hpcbox_engine_preload import __version__, _native, engine

FIX = "; reinstall hpcbox-engine-preload (the wheel for this machine)"


@pytest.fixture
def libexec(tmp_path, monkeypatch) -> Path:
    """A HPCBOX_LIBEXEC_DIR holding this package's own launcher and glibc library."""
    for name in (_native.LAUNCHER, _native.PRELOAD_LIBRARY):
        shutil.copy2(_native.HERE / name, tmp_path / name)
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    return tmp_path


def test_the_launcher_tells_its_version_and_architecture(helper_checks):
    helper_checks.version_line(_native.launcher_path(), "hpcbox-preload-exec", __version__)


def test_the_copied_helpers_serve(libexec):
    ok, reason = engine.available()
    assert ok, reason


@pytest.mark.parametrize("name", [_native.LAUNCHER, _native.PRELOAD_LIBRARY, _native.PRELOAD_LIBRARY_MUSL])
def test_a_helper_for_another_machine_is_named_with_the_reason(helper_checks, libexec, name):
    helper_checks.other_machines_elf(libexec / name, helper_checks.ET_DYN)
    ok, reason = engine.available()
    where = f"{libexec}/{name} (set by HPCBOX_LIBEXEC_DIR)"
    other, here = helper_checks.OTHER, helper_checks.HERE
    assert (ok, reason) == (False, f"{where} is built for {other}, but this machine is {here}{FIX}")


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
