"""The builtin runner as `hpcbox info` sees it: its --version (the package's version and the
architecture it was built for), and a runner that cannot run here named with the reason."""

from __future__ import annotations

from hpcbox_engine_runc import __version__, engine
from hpcbox_engine_runc._engine import runner_path


def test_the_runner_tells_its_version_and_architecture(helper_checks):
    helper_checks.version_line(runner_path(), "hpcbox-userns", __version__)


def test_a_runner_for_another_machine_is_named_with_the_reason(helper_checks, tmp_path, monkeypatch):
    helper_checks.other_machines_elf(tmp_path / "hpcbox-userns")
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    ok, reason = engine.available()
    assert not ok
    assert reason == (f"the runner cannot run: {tmp_path}/hpcbox-userns (set by HPCBOX_LIBEXEC_DIR) is built "
                      f"for {helper_checks.OTHER}, but this machine is {helper_checks.HERE}; reinstall "
                      "hpcbox-engine-runc (the wheel for this machine)")


def test_the_runner_is_named_before_the_sysctls(helper_checks, tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    (proc / "sys/user").mkdir(parents=True)
    (proc / "sys/user/max_user_namespaces").write_text("0\n")
    helper_checks.other_machines_elf(tmp_path / "hpcbox-userns")
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    ok, reason = engine.available(proc_root=str(proc))
    assert not ok and reason.startswith(f"the runner cannot run: {tmp_path}/hpcbox-userns "), reason


def test_a_missing_runner_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    ok, reason = engine.available()
    assert not ok and f"{tmp_path}/hpcbox-userns (set by HPCBOX_LIBEXEC_DIR) is missing" in reason, reason
