"""A delegated runc run that fails in runc's own nsexec self-copy, before the program exists, is
started once more; every other failure is reported once, with runc's nsexec reason.

runc 1.1's transient self-copy failure cannot be caused on demand, so a `runc` placed first on PATH
fails its first call the way runc does (its JSON log line, its stderr line, input read from stdin)
and hands every other call to the real runc. The deterministic nsexec failure is real runc's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from hpcbox_engine_runc import engine
from hpcbox_engine_runc._availability import runtime_binary
from hpcbox_engine_runc._runc_retry import nsexec_failures, stdin_rewind

RUNTIME = {"org.hpcbox.runc.runtime": "runc"}
AGAIN = "starting it once more"
FAKE = """#!/bin/sh
echo call >> "$FAKE_CALLS"
if { [ "$(wc -l < "$FAKE_CALLS")" -eq 1 ] && [ -n "$FAKE_FAIL_FIRST" ]; } || [ -n "$FAKE_FAIL_ALL" ]; then
  trap '' TERM
  dd bs=3 count=1 status=none > /dev/null
  [ -z "$FAKE_READY" ] || { echo ready > "$FAKE_READY"; sleep 1; }
  printf '{"level":"fatal","msg":"nsexec[%s]: could not ensure we are a cloned binary: %s","time":"t"}\\n' \\
    $$ "Resource temporarily unavailable" >> "$2"
  echo "runc run failed: unable to start container process: waiting for init preliminary setup: \\
read init-p: connection reset by peer" >&2
  exit 1
fi
exec "$FAKE_REAL" "$@"
"""


@pytest.fixture
def fake_runc(tmp_path, monkeypatch):
    """Install the failing-first `runc` on PATH; returns a function giving the number of calls."""
    real = runtime_binary("runc")
    if real is None:
        pytest.skip("runc is not installed")
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    script = bindir / "runc"
    script.write_text(FAKE)
    script.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_REAL", real)
    monkeypatch.setenv("FAKE_CALLS", str(calls))
    monkeypatch.setenv("FAKE_FAIL_FIRST", "1")
    return lambda: len(calls.read_text().splitlines())


def _run(bundle, stdin_text=""):
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        fin.write(stdin_text.encode())
        fin.seek(0)
        code = engine.run(bundle, stdin=fin, stdout=fout, stderr=ferr)
        fout.seek(0)
        ferr.seek(0)
        return code, fout.read().decode(), ferr.read().decode()


def test_nsexec_failures_reads_only_fatal_nsexec_lines(tmp_path):
    log = tmp_path / "runc.log"
    entries = [
        {"level": "fatal", "msg": "nsexec-1[7]: failed to setns into net namespace: Invalid argument"},
        {"level": "warning", "msg": "nsexec[8]: only a warning"},
        {"level": "error", "msg": "runc run failed: unable to start container process"},
    ]
    log.write_text("\n".join(json.dumps(entry) for entry in entries) + "\nnot json\n")
    assert nsexec_failures(str(log)) == ["nsexec-1[7]: failed to setns into net namespace: Invalid argument"]
    assert nsexec_failures(str(tmp_path / "absent")) == []


def test_stdin_rewind_tells_what_can_be_replayed(tmp_path):
    data = tmp_path / "in"
    data.write_bytes(b"abcdef")
    with open(data, "rb") as handle:
        os.lseek(handle.fileno(), 2, os.SEEK_SET)
        assert stdin_rewind(handle) == 2
    assert stdin_rewind(subprocess.DEVNULL) == -1
    with open(os.devnull, "rb") as null:
        assert stdin_rewind(null.fileno()) == -1
    read_end, write_end = os.pipe()
    try:
        assert stdin_rewind(read_end) is None
    finally:
        os.close(read_end)
        os.close(write_end)
    assert stdin_rewind(subprocess.PIPE) is None


@pytest.mark.usefixtures("need_userns")
def test_a_self_copy_failure_is_started_again_with_the_same_stdin(make_bundle, fake_runc):
    bundle = make_bundle(["cat"], annotations=RUNTIME)
    code, out, err = _run(bundle, "hello input")
    assert (code, out) == (0, "hello input"), err
    assert fake_runc() == 2
    assert err.count(AGAIN) == 1, err
    assert "runc: nsexec[" in err and "could not ensure we are a cloned binary" in err, err


@pytest.mark.usefixtures("need_userns")
def test_a_second_self_copy_failure_is_not_tried_a_third_time(make_bundle, fake_runc, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL_ALL", "1")
    bundle = make_bundle(["cat"], annotations=RUNTIME)
    code, out, err = _run(bundle, "x")
    assert code != 0 and out == ""
    assert fake_runc() == 2
    assert err.count(AGAIN) == 1 and err.count("could not ensure we are a cloned binary") == 2, err


@pytest.mark.usefixtures("need_userns")
def test_a_deterministic_nsexec_failure_is_told_once_with_runcs_reason(make_bundle, fake_runc, monkeypatch):
    monkeypatch.delenv("FAKE_FAIL_FIRST")  # real runc throughout
    namespaces = [{"type": kind} for kind in ("pid", "ipc", "uts", "mount", "user")]
    bundle = make_bundle(["true"], annotations=RUNTIME,
                         namespaces=[*namespaces, {"type": "network", "path": os.devnull}])
    code, _out, err = _run(bundle)
    assert code != 0
    assert fake_runc() == 1
    assert AGAIN not in err
    assert "runc: nsexec" in err and "setns" in err, err


@pytest.mark.usefixtures("need_userns")
def test_no_second_try_when_stdin_is_a_pipe(make_bundle, fake_runc):
    bundle = make_bundle(["cat"], annotations=RUNTIME)
    read_end, write_end = os.pipe()
    os.write(write_end, b"piped")
    os.close(write_end)
    try:
        with tempfile.TemporaryFile() as ferr:
            code = engine.run(bundle, stdin=read_end, stdout=subprocess.DEVNULL, stderr=ferr)
            ferr.seek(0)
            err = ferr.read().decode()
    finally:
        os.close(read_end)
    assert code != 0
    assert fake_runc() == 1
    assert AGAIN not in err and "could not ensure we are a cloned binary" in err, err


@pytest.mark.usefixtures("need_userns")
def test_no_second_try_after_a_signal_was_passed_on(make_bundle, fake_runc, monkeypatch, tmp_path):
    ready = tmp_path / "ready"
    monkeypatch.setenv("FAKE_READY", str(ready))
    bundle = make_bundle(["true"], annotations=RUNTIME)
    container = engine.start(bundle, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    container.send_signal(signal.SIGTERM)  # the fake ignores it, then fails as runc's self-copy does
    assert container.wait(timeout=60) != 0
    assert fake_runc() == 1
