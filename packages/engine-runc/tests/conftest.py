"""Fixtures: a tiny busybox rootfs and OCI bundles that point at it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from hpcbox_engine_runc import engine

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ["sh", "echo", "cat", "id", "ls", "hostname", "pwd", "env", "sleep", "touch", "kill", "ip", "true",
           "false", "whoami", "ps", "grep", "wc", "mkdir", "readlink", "head", "stat", "tty"]


def _static_busybox() -> bool:
    if not os.path.exists(BUSYBOX):
        return False
    out = subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True, check=False).stdout
    return "statically linked" in out or "static-pie" in out or not out


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory) -> Path:
    if not _static_busybox():
        pytest.skip("needs a static busybox (Debian: apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("busybox") / "rootfs"
    for sub in ("bin", "etc", "tmp", "proc", "dev", "sys", "run", "var", "data"):
        (root / sub).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "var" / "run").symlink_to("/run")  # absolute link: must resolve inside the rootfs
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


@pytest.fixture
def make_bundle(rootfs, tmp_path):
    counter = [0]

    def make(args, *, env=None, cwd="/", user=None, mounts=(), annotations=None, hostname=None,
             readonly=False, namespaces=None, process_terminal=False, **extra) -> Path:
        counter[0] += 1
        bundle = tmp_path / f"bundle{counter[0]}"
        bundle.mkdir()
        config = {
            "ociVersion": "1.0.2",
            "process": {"args": list(args), "env": list(env or ["PATH=/bin", "HOME=/"]), "cwd": cwd,
                        "user": dict(user or {"uid": 0, "gid": 0}), "terminal": process_terminal},
            "root": {"path": str(rootfs), "readonly": readonly},
            "mounts": list(mounts),
            "annotations": dict(annotations or {}),
        }
        if hostname:
            config["hostname"] = hostname
        if namespaces is not None:
            config["linux"] = {"namespaces": namespaces}
        config.update(extra)
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    return make


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


def run_bundle(bundle, stdin_text: str = "") -> Result:
    """engine.run() with stdin from a file and stdout/stderr captured in files."""
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        fin.write(stdin_text.encode())
        fin.seek(0)
        code = engine.run(bundle, stdin=fin, stdout=fout, stderr=ferr)
        fout.seek(0)
        ferr.seek(0)
        return Result(code, fout.read().decode(), ferr.read().decode())


@pytest.fixture
def run():
    return run_bundle


@pytest.fixture(params=["builtin", "runc"])
def runtime(request):
    """builtin always; runc when installed (delegation is tested for real, never mocked)."""
    from hpcbox_engine_runc._availability import runtime_binary

    if request.param != "builtin" and not runtime_binary(request.param):
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture
def need_userns():
    ok, reason = engine.available()
    if not ok:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def helper_checks():
    """The checks of the C helpers shared by the C packages' tests (--version, another machine's ELF),
    loaded by path: integration/hpcbox_testing/helper_checks.py, or the sdist's tests/ copy."""
    for path in (REPO / "integration" / "hpcbox_testing" / "helper_checks.py", HERE / "helper_checks.py"):
        if path.is_file():
            spec = importlib.util.spec_from_file_location("hpcbox_helper_checks", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise RuntimeError("helper_checks.py not found: neither in the repository (integration/hpcbox_testing/) "
                       "nor copied beside the tests by the sdist")
