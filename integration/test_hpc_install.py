"""hpcbox as a site would install it: a prefix made read-only (chmod -R a-w, as if another user owned
it; "module load hpcbox" = PATH and PYTHONPATH), run by an ordinary user with the system Python; and
the store and HOME on different filesystems (tmpfs /dev/shm vs disk), both ways round.

The prefix is laid out from the packages of this test environment (each package's files, the built
runner and C parts included, and its dist-info), like a `pip install --prefix` without an index: the
tests must not reach a package index.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List

import pytest
from test_cli_common import hpcbox_env, ok

MODULES = {  # import name -> distribution name
    "hpcbox": "hpcbox-cli", "hpcbox_registry": "hpcbox-registry", "hpcbox_layers": "hpcbox-layers",
    "hpcbox_oci_bundle": "hpcbox-oci-bundle", "hpcbox_engine_runc": "hpcbox-engine-runc",
    "hpcbox_engine_ptrace": "hpcbox-engine-ptrace", "hpcbox_engine_preload": "hpcbox-engine-preload",
    "hpcbox_engine_singularity": "hpcbox-engine-singularity",
    "requests": "requests", "urllib3": "urllib3", "certifi": "certifi", "idna": "idna",
    "charset_normalizer": "charset-normalizer", "isal": "isal", "zstandard": "zstandard",
    "pyroute2": "pyroute2",
}
SHM = Path("/dev/shm")


def _copy_module(name: str, site: Path) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    if spec.submodule_search_locations:
        source = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(source, site / name, ignore=ignore)
    elif spec.origin:
        shutil.copy2(spec.origin, site / Path(spec.origin).name)
    try:
        dist = importlib.metadata.distribution(MODULES[name])
    except importlib.metadata.PackageNotFoundError:
        return
    info = Path(str(dist.locate_file(""))) if not hasattr(dist, "_path") else Path(dist._path)
    if info.name.endswith(".dist-info") and info.is_dir():
        shutil.copytree(info, site / info.name, ignore=ignore)


def tree(root: Path) -> Dict[str, tuple]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("opt") / "hpcbox-0.1"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = root / "lib" / version / "site-packages"
    site.mkdir(parents=True)
    for name in MODULES:
        _copy_module(name, site)
    python = getattr(sys, "_base_executable", None) or shutil.which("python3")
    bindir = root / "bin"
    bindir.mkdir()
    (bindir / "hpcbox").write_text(f'#!/bin/sh\nexec {python} -s -m hpcbox "$@"\n')
    (bindir / "hpcbox").chmod(0o755)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)
    yield root, site
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)


def module_env(prefix_root: Path, site: Path, **extra: str) -> dict:
    """What `module load hpcbox` sets; nothing of the test's own virtual environment."""
    env = {k: v for k, v in hpcbox_env(**extra).items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")}
    path = [p for p in env.get("PATH", "/usr/bin:/bin").split(":") if "hatch" not in p and "venv" not in p]
    env["PATH"] = ":".join([str(prefix_root / "bin"), *path])
    env["PYTHONPATH"] = str(site)
    return env


def run(args: List[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["hpcbox", *args], capture_output=True, text=True, env=env, timeout=600,
                          check=False, **kwargs)


def test_run_from_a_read_only_installation(prefix, registry_http, tmp_path):
    root, site = prefix
    if os.access(site, os.W_OK):
        pytest.skip("this user writes read-only directories (root): the install would not be read-only")
    before = tree(root)
    env = module_env(root, site, HOME=str(tmp_path / "home"), HPCBOX_HOME=str(tmp_path / "store"))
    (tmp_path / "home").mkdir()
    versions = json.loads(ok(run(["version", "--json"], env)).stdout)
    assert versions["hpcbox"] and versions["hpcbox-engine-runc"] and versions["hpcbox-layers"], versions
    where = ok(subprocess.run(["sh", "-c", "python3 -s -c 'import hpcbox; print(hpcbox.__file__)'"],
                              capture_output=True, text=True, env=env, check=False)).stdout
    assert where.startswith(str(site)), where  # the installation, not the test's environment
    info = json.loads(ok(run(["info", "--json"], env)).stdout)
    pushed = registry_http.push("busybox", "hpcbox/install-busybox", "1")
    ok(run(["pull", "-q", pushed.ref], env))
    ok(run(["create", "--name", "box", pushed.ref], env))
    engines = [name for name, entry in info["engines"].items() if entry["available"]]
    assert "runc" in engines, info
    for engine in engines:
        if engine in ("preload", "singularity"):
            continue  # preload cannot run the static busybox; singularity is not installed here
        proc = run(["run", "--engine", engine, "box", "sh", "-c", "echo ran-$0", engine], env)
        assert (proc.returncode, proc.stdout) == (0, f"ran-{engine}\n"), (engine, proc.stderr)
    # the default engine, a new container from the image, removed afterwards
    assert ok(run(["run", "--rm", pushed.ref, "sh", "-c", "echo hello"], env)).stdout == "hello\n"
    # nothing was written into the installation: no __pycache__, no built files, no state
    assert tree(root) == before
    assert not list(root.rglob("__pycache__"))


@pytest.mark.parametrize("layout", ["store-on-tmpfs", "home-on-tmpfs"])
def test_home_and_store_on_different_filesystems(prefix, registry_http, tmp_path, layout):
    from hpcbox.containers import overlay

    root, site = prefix
    if not SHM.is_dir() or not os.access(SHM, os.W_OK):
        pytest.skip("/dev/shm is not a writable tmpfs here")
    shm = SHM / f"hpcbox-test-{uuid.uuid4().hex[:12]}"
    shm.mkdir()
    try:
        disk = tmp_path / "disk"
        disk.mkdir()
        if os.stat(shm).st_dev == os.stat(disk).st_dev:
            pytest.skip("/dev/shm and the test directory are on the same filesystem")
        on_tmpfs = layout == "store-on-tmpfs"
        home, store = (disk / "home", shm / "store") if on_tmpfs else (shm / "home", disk / "store")
        home.mkdir()
        env = module_env(root, site, HOME=str(home), HPCBOX_HOME=str(store), TMPDIR=str(home))
        pushed = registry_http.push("busybox", "hpcbox/fs-busybox", "1")
        ok(run(["pull", "-q", pushed.ref], env))
        assert ok(run(["run", "--name", "c1", pushed.ref, "sh", "-c", "echo one > /tmp/x; cat /tmp/x"],
                      env)).stdout == "one\n"
        ok(run(["verify", pushed.ref], env))
        # an export to HOME and an import back cross the filesystems
        ok(run(["export", "-o", str(home / "c1.tar"), "c1"], env))
        ok(run(["import", str(home / "c1.tar"), "local/c1:1"], env))
        assert ok(run(["run", "--rm", "local/c1:1", "sh", "-c", "cat /tmp/x"], env)).stdout == "one\n"
        # an overlay container (or the copy fallback, with its note, where this filesystem has no overlay)
        proc = ok(run(["create", "--overlay", "--name", "ovl", pushed.ref], env))
        works, _ = overlay.supported(store)
        assert works or "made a copy instead" in proc.stderr
        assert ok(run(["run", "ovl", "sh", "-c", "echo two > /tmp/y; cat /tmp/y"], env)).stdout == "two\n"
        assert ok(run(["run", "ovl", "sh", "-c", "cat /tmp/y"], env)).stdout == "two\n"
        ok(run(["rm", "c1", "ovl"], env))
        ok(run(["rmi", "local/c1:1", pushed.ref], env))
        ok(run(["prune"], env))
        assert json.loads(ok(run(["ps", "--json"], env)).stdout) == []
        assert list((store / "tmp").iterdir()) == []
        assert sorted(p.name for p in (store / "containers").iterdir()) == []
    finally:
        shutil.rmtree(shm, ignore_errors=True)
