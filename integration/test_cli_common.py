"""Helpers for the test_cli_* integration tests: run the real `hpcbox` command and check a store.

(No tests here; the name keeps it among the files the CLI engineer owns.)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional


def default_signals(argv: List[str]) -> List[str]:
    """*argv* started with the default action for SIGHUP, SIGINT and SIGTERM (then exec'd, so nothing
    runs between fork and exec). Started from `nohup` or as a background job, the test run ignores
    SIGHUP or SIGINT and a child would inherit that: Python then installs no KeyboardInterrupt
    handler, and a shell cannot trap a signal that was ignored when it started."""
    reset = ("import os, signal, sys\n"
             "for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):\n"
             "    signal.signal(s, signal.SIG_DFL)\n"
             "os.execvp(sys.argv[1], sys.argv[1:])\n")
    return [sys.executable, "-c", reset, *argv]


def hpcbox_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBOX_")}
    env.update(extra)
    return env


def hpcbox(home: Path, *args: str, input: Optional[str] = None, env: Optional[dict] = None,
           timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    """``python -m hpcbox --home HOME ARGS`` (the same entry point as the console script)."""
    return subprocess.run([sys.executable, "-m", "hpcbox", "--home", str(home), *args],
                          input=input, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else hpcbox_env(), check=False, **popen)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    return proc


def one_error(proc: subprocess.CompletedProcess, code: Optional[int] = None) -> str:
    """The failure is one line `hpcbox: error: <problem>; <fix>` and a non-zero exit code."""
    assert proc.returncode != 0, proc.stdout
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("hpcbox: error: ")]
    assert len(lines) == 1 and "; " in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def images(home: Path) -> List[dict]:
    return json.loads(ok(hpcbox(home, "images", "--json")).stdout)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def assert_store_valid(home: Path) -> dict:
    """index.json parses; each listed image has all its blobs; every blob's name is its sha256."""
    layout = home / "images"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        manifest = json.loads((layout / "blobs/sha256" / entry["digest"].split(":")[1]).read_text())
        for desc in [manifest["config"], *manifest["layers"]]:
            path = layout / "blobs/sha256" / desc["digest"].split(":")[1]
            assert path.is_file(), desc
            assert path.stat().st_size == desc["size"], desc
    for blob in (layout / "blobs/sha256").iterdir():
        assert sha256_file(blob) == blob.name, blob
    assert sorted(p.name for p in layout.iterdir()) == ["blobs", "index.json", "oci-layout"]
    return index


def login_args(registry) -> List[str]:
    """Options every command needs for this registry fixture (the CA of the TLS one)."""
    return ["--ca-bundle", str(registry.ca_bundle)] if registry.ca_bundle else []


def login(home: Path, registry) -> None:
    if registry.username:
        ok(hpcbox(home, *login_args(registry), "login", "-u", registry.username, "--password-stdin",
                  registry.host, input=registry.password + "\n"))
