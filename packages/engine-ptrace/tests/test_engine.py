"""The engine object: the tracer's command line from a bundle, availability, errors, exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hpcbox_oci_bundle import parse_bundle

from hpcbox_engine_ptrace import BundleError, PtraceEngine, UnavailableError, engine, tracer_argv


def _config(tmp_path, **process):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    config = {
        "ociVersion": "1.0.2",
        "root": {"path": str(rootfs)},
        "process": {"args": ["/bin/true"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                    **process},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
        "annotations": {},
    }
    return config


def test_argv_from_a_bundle(tmp_path):
    config = _config(tmp_path, cwd="/tmp", user={"uid": 7, "gid": 8})
    data = tmp_path / "data"
    data.mkdir()
    config["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                             "options": ["rbind", "ro"]})
    config["hostname"] = "box"
    argv = tracer_argv(parse_bundle(config), "/x/hpcbox-ptrace")
    assert argv[:9] == ["/x/hpcbox-ptrace", "--rootfs", str(tmp_path / "rootfs"), "--cwd", "/tmp",
                        "--uid", "7", "--gid", "8"]
    assert argv[argv.index("--hostname") + 1] == "box"
    assert argv[argv.index("/proc") - 1:argv.index("/proc") + 2] == ["--bind", "/proc", "/proc"]
    assert argv[argv.index("/data") - 1:argv.index("/data") + 2] == ["--bind-ro", "/data", str(data)]
    assert argv[-2:] == ["--", "/bin/true"]
    assert "--no-seccomp" not in argv


def test_exact_owners_from_the_environment(tmp_path, monkeypatch):
    """HPCBOX_PTRACE_EXACT_OWNERS=1 passes --exact-owners under root emulation only."""
    emulated = _config(tmp_path, user={"uid": os.getuid() + 1, "gid": os.getgid() + 1})
    as_caller = _config(tmp_path, user={"uid": os.getuid(), "gid": os.getgid()})
    monkeypatch.delenv("HPCBOX_PTRACE_EXACT_OWNERS", raising=False)
    assert "--exact-owners" not in tracer_argv(parse_bundle(emulated))
    monkeypatch.setenv("HPCBOX_PTRACE_EXACT_OWNERS", "0")
    assert "--exact-owners" not in tracer_argv(parse_bundle(emulated))
    monkeypatch.setenv("HPCBOX_PTRACE_EXACT_OWNERS", "1")
    assert "--exact-owners" in tracer_argv(parse_bundle(emulated))
    assert "--exact-owners" not in tracer_argv(parse_bundle(as_caller))


def test_annotations(tmp_path):
    config = _config(tmp_path)
    config["annotations"]["org.hpcbox.ptrace.seccomp"] = "off"
    assert "--no-seccomp" in tracer_argv(parse_bundle(config))
    config["annotations"]["org.hpcbox.ptrace.seccomp"] = "maybe"
    with pytest.raises(BundleError, match="neither on nor off"):
        tracer_argv(parse_bundle(config))
    config["annotations"] = {"org.hpcbox.net": "none"}
    with pytest.raises(BundleError, match="--engine runc"):
        tracer_argv(parse_bundle(config))


def test_mounts_that_need_a_namespace_are_refused(tmp_path):
    config = _config(tmp_path)
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    with pytest.raises(BundleError, match="tmpfs"):
        engine.run(config)


def test_missing_tracer_is_unavailable(tmp_path):
    broken = PtraceEngine(tracer=str(tmp_path / "nope"))
    ok, reason = broken.available()
    assert not ok and "reinstall" in reason
    with pytest.raises(UnavailableError, match="reinstall"):
        broken.run(_config(tmp_path))


def test_yama_scope_3_is_explained(tmp_path):
    proc = tmp_path / "proc"
    (proc / "sys/kernel/yama").mkdir(parents=True)
    (proc / "sys/kernel/yama/ptrace_scope").write_text("3\n")
    ok, reason = engine.available(proc_root=str(proc))
    assert not ok and "ptrace_scope" in reason and "--engine runc" in reason


def test_a_failing_probe_is_reported(tmp_path):
    fake = tmp_path / "hpcbox-ptrace"
    fake.write_text("#!/bin/sh\necho 'hpcbox-ptrace: probe failed at ptrace(PTRACE_SEIZE): Operation not "
                    "permitted' >&2\nexit 125\n")
    fake.chmod(0o755)
    ok, reason = PtraceEngine(tracer=str(fake)).available()
    assert not ok and "PTRACE_SEIZE" in reason and "Operation not permitted" in reason


@pytest.mark.skipif(not engine.available()[0], reason="ptrace is not usable here")
def test_run_returns_the_exit_status_and_128_plus_signal(tmp_path):
    import shutil

    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("needs busybox")
    config = _config(tmp_path, args=["/bin/busybox", "sh", "-c", "exit 3"])
    (tmp_path / "rootfs/bin").mkdir()
    shutil.copy2(busybox, tmp_path / "rootfs/bin/busybox")
    assert engine.run(config, forward_signals=False) == 3
    config["process"]["args"] = ["/bin/busybox", "sh", "-c", "kill -TERM $$"]
    assert engine.run(config, forward_signals=False) == 128 + 15
    # a bundle directory, run by a fresh interpreter with the signal forwarding on
    config["process"]["args"] = ["/bin/busybox", "sh", "-c", "exit 5"]
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle/config.json").write_text(json.dumps(config))
    code = ("import sys; from hpcbox_engine_ptrace import engine; "
            f"sys.exit(engine.run({str(tmp_path / 'bundle')!r}))")
    assert subprocess.run([sys.executable, "-c", code], check=False, env=dict(os.environ)).returncode == 5
