"""available(): each knob that disables user namespaces gives its own reason and fix (fake procfs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpcbox_engine_runc import RuncEngine, engine
from hpcbox_engine_runc._availability import check_knobs


def fake_proc(root: Path, **knobs: str) -> str:
    paths = {
        "max_user_namespaces": "sys/user/max_user_namespaces",
        "unprivileged_userns_clone": "sys/kernel/unprivileged_userns_clone",
        "apparmor_restrict_unprivileged_userns": "sys/kernel/apparmor_restrict_unprivileged_userns",
    }
    for name, value in knobs.items():
        path = root / paths[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return str(root)


def test_max_user_namespaces_zero(tmp_path):
    ok, reason = engine.available(proc_root=fake_proc(tmp_path, max_user_namespaces="0"))
    assert not ok
    assert "user.max_user_namespaces=0" in reason
    assert "sysctl -w user.max_user_namespaces=" in reason
    assert "ptrace or preload engine" in reason


def test_unprivileged_userns_clone_zero(tmp_path):
    proc = fake_proc(tmp_path, max_user_namespaces="63000", unprivileged_userns_clone="0")
    ok, reason = engine.available(proc_root=proc)
    assert not ok
    assert "kernel.unprivileged_userns_clone=0" in reason
    assert "sysctl -w kernel.unprivileged_userns_clone=1" in reason


def test_apparmor_restriction(tmp_path):
    proc = fake_proc(tmp_path, max_user_namespaces="63000", unprivileged_userns_clone="1",
                     apparmor_restrict_unprivileged_userns="1")
    ok, reason = engine.available(proc_root=proc)
    assert not ok
    assert "kernel.apparmor_restrict_unprivileged_userns=1" in reason
    assert "userns," in reason


def test_knobs_that_allow_leave_the_decision_to_the_probe(tmp_path):
    proc = fake_proc(tmp_path, max_user_namespaces="63000", unprivileged_userns_clone="1",
                     apparmor_restrict_unprivileged_userns="0")
    assert check_knobs(proc)[0] is True
    assert engine.available(proc_root=proc) == engine.available()


def test_missing_knob_files_mean_no_restriction(tmp_path):
    assert check_knobs(str(tmp_path))[0] is True


def test_this_host_is_usable_for_the_suite():
    # Debian 12 here allows unprivileged user namespaces ; CI depends on it.
    ok, reason = engine.available()
    assert ok, reason
    assert "probe" in reason


def test_a_missing_runner_is_reported(tmp_path):
    ok, reason = RuncEngine(runner=str(tmp_path / "nope")).available()
    assert not ok
    assert "reinstall hpcbox-engine-runc" in reason


def test_a_runner_that_fails_its_probe_is_reported(tmp_path):
    fake = tmp_path / "failing-runner"
    fake.write_text("#!/bin/sh\necho 'hpcbox-userns: unshare user/mount/pid/uts/ipc namespaces: "
                    "Operation not permitted' >&2\nexit 125\n")
    fake.chmod(0o755)
    ok, reason = RuncEngine(runner=str(fake)).available()
    assert not ok
    assert "Operation not permitted" in reason and "forbids it here" in reason


def test_an_unknown_runtime_binary_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    from hpcbox_engine_runc import _availability

    monkeypatch.setattr(_availability, "runtime_binary", lambda name: None)
    ok, reason = engine.available(runtime="crun")
    assert not ok
    assert "crun is not installed" in reason


@pytest.mark.root
def test_max_user_namespaces_zero_for_real():
    if os.geteuid() != 0:
        pytest.skip("changes /proc/sys/user/max_user_namespaces: runs only when the suite runs as root")
    knob = Path("/proc/sys/user/max_user_namespaces")
    saved = knob.read_text()
    try:
        knob.write_text(saved)
    except OSError as error:
        pytest.skip(f"cannot write {knob} here ({error.strerror}): /proc/sys is read-only in this sandbox")
    try:
        knob.write_text("0\n")
        ok, reason = engine.available()
        assert not ok
        assert "user.max_user_namespaces=0" in reason
    finally:
        knob.write_text(saved)
    assert engine.available()[0]
