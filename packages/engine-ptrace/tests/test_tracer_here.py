"""The tracer as `hpcbox info` sees it: its --version (the package's version and the architecture
it was built for), and a tracer that cannot run here named with the reason."""

from __future__ import annotations

from hpcbox_engine_ptrace import PtraceEngine, __version__, engine, tracer_path


def test_the_tracer_tells_its_version_and_architecture(helper_checks):
    helper_checks.version_line(tracer_path(), "hpcbox-ptrace", __version__)


def test_a_tracer_for_another_machine_is_named_with_the_reason(helper_checks, tmp_path):
    tracer = helper_checks.other_machines_elf(tmp_path / "hpcbox-ptrace")
    ok, reason = PtraceEngine(tracer=str(tracer)).available()
    assert not ok
    assert reason == (f"the tracer cannot run: hpcbox-ptrace is built for {helper_checks.OTHER}, but this "
                      f"machine is {helper_checks.HERE}; reinstall hpcbox-engine-ptrace (the wheel for this "
                      "machine)")


def test_the_libexec_dir_applies_and_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCBOX_LIBEXEC_DIR", str(tmp_path))
    ok, reason = engine.available()
    assert not ok and f"{tmp_path}/hpcbox-ptrace (set by HPCBOX_LIBEXEC_DIR) is missing" in reason, reason
