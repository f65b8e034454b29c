"""`hpcbox create --overlay` with the real Debian 12 and busybox images, as the calling user.

Skips with the probe's reason where rootless overlayfs cannot be mounted (Linux < 5.11, no user
namespaces); the copy fallback is tested in packages/cli/tests/test_overlay.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok, one_error

run_store = common.run_store  # fixtures


@pytest.fixture
def store(run_store, tmp_path):
    from hpcbox.containers import overlay

    works, why = overlay.supported(tmp_path)
    if not works:
        pytest.skip(why)
    before = set(run_store.ids())
    yield run_store
    for cid in set(run_store.ids()) - before:  # leave the shared store as we found it
        ok(run_store("rm", "-f", cid))


def containers(store):
    return {c["id"]: c for c in json.loads(ok(store("ps", "--json")).stdout)}


def meta(store, cid):
    return json.loads((store.home / "containers" / cid / "container.json").read_text())


def test_overlay_debian_copies_nothing_and_containers_are_private(store):
    a = ok(store("create", "--overlay", "debian")).stdout.strip()
    b = ok(store("create", "--overlay", "debian")).stdout.strip()
    ma, mb = meta(store, a), meta(store, b)
    assert ma["storage"] == mb["storage"] == "overlay" and containers(store)[a]["storage"] == "overlay"
    lower = Path(ma["lower"])
    assert os.stat(lower).st_ino == os.stat(mb["lower"]).st_ino
    assert os.stat(lower / "usr/bin/dpkg").st_ino == os.stat(Path(mb["lower"]) / "usr/bin/dpkg").st_ino
    upper_a = store.home / "containers" / a / "upper"
    assert os.listdir(upper_a) == [] and os.listdir(store.home / "containers" / a / "rootfs") == []

    assert ok(store("run", a, "cat", "/etc/debian_version")).stdout.startswith("12.")
    ok(store("run", a, "sh", "-c", "echo private > /root/note && rm /etc/debian_version && "
                                   "test ! -e /etc/debian_version"))
    ok(store("run", "--containerauth", a, "useradd", "-m", "alice"))  # /etc/passwd changes in upper/
    # the next run adds the caller to the merged view's /etc/passwd (upper first), keeping alice
    assert ok(store("run", a, "cat", "/root/note")).stdout == "private\n"
    assert ok(store("run", a, "id", "-u", "alice")).stdout.strip().isdigit()
    assert store("run", b, "cat", "/root/note").returncode != 0
    assert ok(store("run", b, "cat", "/etc/debian_version")).stdout.startswith("12.")
    assert (lower / "etc/debian_version").is_file() and not (lower / "root/note").exists()
    assert "alice" not in (lower / "etc/passwd").read_text()

    ok(store("rm", a, b))
    assert not (store.home / "containers" / a).exists() and not (store.home / "containers" / b).exists()
    assert lower.is_dir()  # the image still refers to it


def test_eight_concurrent_overlay_creates_share_one_lower(store):
    env = hpcbox_env()
    procs = [subprocess.Popen([sys.executable, "-m", "hpcbox", "--home", str(store.home), "create",
                               "--overlay", "busybox"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(8)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in outs]
    ids = [out.strip() for out, _ in outs]
    lowers = {meta(store, cid)["lower"] for cid in ids}
    assert len(set(ids)) == 8 and len(lowers) == 1
    base = Path(next(iter(lowers))).parent
    assert not [n for n in os.listdir(base) if n.startswith(".")]  # no build leftovers
    assert ok(store("run", ids[3], "busybox", "cat", "/etc/passwd")).stdout.startswith("root:")


def test_other_engines_get_one_clear_line(store):
    cid = ok(store("create", "--overlay", "--name", "ovl-engines", "busybox")).stdout.strip()
    assert cid
    line = one_error(store("run", "--engine", "ptrace", "ovl-engines", "true"), 125)
    assert "container ovl-engines is an overlay container" in line and "without --overlay" in line
    if common.runc_installed():
        line = one_error(store("run", "--runtime", "runc", "ovl-engines", "true"), 125)
        assert "runc --runtime runc" in line


def test_env_default_and_run_overlay_rm(store):
    env = hpcbox_env(HPCBOX_CREATE_MODE="overlay")
    cid = ok(store("create", "busybox", env=env)).stdout.strip()
    assert meta(store, cid)["storage"] == "overlay"
    before = set(store.ids())
    assert ok(store("run", "--overlay", "--rm", "busybox", "sh", "-c", "echo hi")).stdout == "hi\n"
    assert set(store.ids()) == before
