"""The engine against a real apptainer/singularity, when one is on PATH (Debian 12 has none)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from singularity_standin import run_bundle

from hpcbox_engine_singularity import SingularityEngine, UnavailableError, find_binary

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ["sh", "echo", "cat", "id", "pwd", "env", "true", "false", "touch", "hostname", "kill", "sleep"]


@pytest.fixture(scope="module")
def real_engine():
    try:
        binary = find_binary()
    except UnavailableError as error:
        pytest.skip(f"no real apptainer/singularity here ({error})")
    engine = SingularityEngine(binary)
    ok, reason = engine.available()
    if not ok:
        pytest.skip(f"the real binary is not usable: {reason}")
    return engine


@pytest.fixture(scope="module")
def busybox_root(tmp_path_factory):
    out = subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True, check=False).stdout \
        if shutil.which("file") else ""
    if not os.path.exists(BUSYBOX) or (out and "statically linked" not in out and "static-pie" not in out):
        pytest.skip("needs a static busybox (Debian: apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("real") / "rootfs"
    for sub in ("bin", "etc", "tmp", "root", "proc", "dev", "sys", "data"):
        (root / sub).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


def _bundle(tmp_path, root, args, **process):
    config = {"ociVersion": "1.0.2",
              "process": {"args": args, "env": ["PATH=/bin", "GREETING=hi there"], "cwd": "/",
                          "user": {"uid": os.getuid(), "gid": os.getgid()}, **process},
              "root": {"path": str(root)}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_real_exit_status_and_output(real_engine, busybox_root, tmp_path):
    result = run_bundle(real_engine, _bundle(tmp_path, busybox_root, ["sh", "-c", "echo $GREETING; exit 3"]))
    assert result.code == 3, result
    assert result.out == "hi there\n"


def test_real_stdin_and_cwd(real_engine, busybox_root, tmp_path):
    result = run_bundle(real_engine, _bundle(tmp_path, busybox_root, ["sh", "-c", "pwd; cat"], cwd="/tmp"),
                        stdin_text="piped\n")
    assert result.code == 0, result
    assert result.out == "/tmp\npiped\n"


def test_real_signal_death(real_engine, busybox_root, tmp_path):
    result = run_bundle(real_engine, _bundle(tmp_path, busybox_root, ["sh", "-c", "kill -9 $$"]))
    assert result.code == 137, result


def test_real_readonly_bind(real_engine, busybox_root, tmp_path):
    data = tmp_path / "shared"
    data.mkdir()
    (data / "in.txt").write_text("from host\n")
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", "cat /data/in.txt; touch /data/new && echo wrote"])
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"] = [{"destination": "/data", "type": "bind", "source": str(data), "options": ["ro"]}]
    (bundle / "config.json").write_text(json.dumps(config))
    result = run_bundle(real_engine, bundle)
    assert result.out.startswith("from host\n"), result
    assert "wrote" not in result.out
    assert not (data / "new").exists()
