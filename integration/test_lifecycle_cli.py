"""The container lifecycle through the real `hpcbox` command on real images from a real registry:
archives read and written by skopeo and umoci, removal of unfriendly trees, interrupted creates,
16 concurrent creates. Run as an ordinary user in CI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hpcbox_testing.images import LAYERED_ABSENT, LAYERED_EXPECTED
from test_cli_common import default_signals, hpcbox, hpcbox_env, ok

ID_LEN = 64


def ps(home: Path) -> list:
    return json.loads(ok(hpcbox(home, "ps", "--json")).stdout)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pulled(registry, home: Path, image: str, repo: str) -> str:
    pushed = registry.push(image, f"hpcbox/{repo}", "1")
    ok(hpcbox(home, "pull", "-q", pushed.ref))
    return pushed.ref


def test_save_is_read_by_skopeo_and_umoci(registry_http, tmp_path):
    home = tmp_path / "home"
    ref = _pulled(registry_http, home, "layered", "life-layered")
    cid = ok(hpcbox(home, "create", ref)).stdout.strip()
    rootfs = home / "containers" / cid / "rootfs"
    stored = json.loads(ok(hpcbox(home, "inspect", ref)).stdout)

    # docker-archive -> skopeo (into an OCI layout) -> same config, layers decompress to the diff_ids
    archive = tmp_path / "docker.tar"
    ok(hpcbox(home, "save", "-o", str(archive), ref))
    copied = tmp_path / "from-docker-archive"
    subprocess.run(["skopeo", "copy", f"docker-archive:{archive}", f"oci:{copied}:x"], check=True,
                   capture_output=True)
    inspected = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{copied}:x"], check=True,
                                          capture_output=True, text=True).stdout)
    assert inspected["rootfs"]["diff_ids"] == stored["Config"]["rootfs"]["diff_ids"]
    tags = json.loads(subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"], check=True,
                                     capture_output=True, text=True).stdout)
    assert tags["Layers"] and tags["Architecture"] == "amd64"

    # OCI archive, extracted, -> umoci unpack: the same files as our container
    oci_archive = tmp_path / "oci.tar"
    ok(hpcbox(home, "save", "--format", "oci", "-o", str(oci_archive), ref))
    extracted = tmp_path / "oci-layout"
    with tarfile.open(oci_archive) as tar:
        tar.extractall(extracted)
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{extracted}:{ref}", str(bundle)],
                   check=True, capture_output=True)
    for name, spec in LAYERED_EXPECTED.items():
        ours, theirs = rootfs / name, bundle / "rootfs" / name
        if spec[0] == "symlink":
            assert os.readlink(ours) == os.readlink(theirs) == spec[1]
        elif spec[0] in ("file", "hardlink") and os.access(theirs, os.R_OK):
            assert _sha(ours) == _sha(theirs)
    for name in LAYERED_ABSENT:
        assert not os.path.lexists(rootfs / name) and not os.path.lexists(bundle / "rootfs" / name)
    subprocess.run(["chmod", "-R", "u+rwx", str(bundle)], check=False)


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_load_what_skopeo_writes(transport, test_images, tmp_path):
    layout = test_images.layout("busybox")
    archive = tmp_path / f"{transport}.tar"
    subprocess.run(["skopeo", "copy", f"oci:{layout}:latest", f"{transport}:{archive}:test/loaded:7"],
                   check=True, capture_output=True)
    home = tmp_path / "home"
    proc = ok(hpcbox(home, "load", "-i", str(archive)))
    assert proc.stdout == "Loaded image: docker.io/test/loaded:7\n"
    assert ok(hpcbox(home, "verify", "test/loaded:7")).stdout == "test/loaded:7: OK\n"
    cid = ok(hpcbox(home, "create", "--name", "loaded", "test/loaded:7")).stdout.strip()
    busybox = home / "containers" / cid / "rootfs/bin/busybox"
    assert _sha(busybox) == _sha(Path("/bin/busybox"))
    # and stdin works too
    with open(archive, "rb") as handle:
        proc = subprocess.run([sys.executable, "-m", "hpcbox", "--home", str(tmp_path / "h2"),
                               "load", "-i", "-"],
                              stdin=handle, capture_output=True, text=True, env=hpcbox_env(), check=False)
    assert proc.returncode == 0 and "docker.io/test/loaded:7" in proc.stdout, proc.stderr


def test_rm_removes_a_container_of_the_layered_image(registry_http, tmp_path):
    home = tmp_path / "home"
    ref = _pulled(registry_http, home, "layered", "life-rm")
    cid = ok(hpcbox(home, "create", "--name", "lay", ref)).stdout.strip()
    rootfs = home / "containers" / cid / "rootfs"
    assert (rootfs / "data/private/inside.txt").exists()
    # make it worse than the image: a 0000 directory holding a 0000 file, and a 0000 top directory
    os.chmod(rootfs / "data/private/inside.txt", 0)
    os.chmod(rootfs / "data/private", 0)
    os.chmod(rootfs / "data", 0o500)
    ok(hpcbox(home, "rm", "lay"))
    assert ps(home) == []
    assert list((home / "containers").iterdir()) == []


def _create_and_interrupt(home: Path, ref: str, sig: int) -> int:
    """Start `hpcbox create`, signal it once its rootfs is being written; returns its exit status."""
    argv = default_signals([sys.executable, "-m", "hpcbox", "--home", str(home), "create", ref])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=hpcbox_env())
    containers = home / "containers"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        work = list(containers.glob(".create-*")) if containers.is_dir() else []
        if work and (work[0] / "rootfs/usr").exists():
            break
        time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.communicate(timeout=60)
    return proc.returncode


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_create_of_debian(sig, registry_http, tmp_path):
    home = tmp_path / "home"
    ref = _pulled(registry_http, home, "debian12", "life-debian")
    for _attempt in range(3):  # a create that won the race and finished is not an interruption: again
        code = _create_and_interrupt(home, ref, sig)
        if code != 0:
            break
        for c in ps(home):
            ok(hpcbox(home, "rm", c["id"]))
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert ps(home) == []  # nothing is listed as ready
    if sig == signal.SIGINT:  # the interrupted create cleaned up after itself
        assert not list((home / "containers").glob(".create-*"))
    ok(hpcbox(home, "prune"))
    assert list((home / "containers").iterdir()) == []  # no orphan left after prune
    cid = ok(hpcbox(home, "create", "--name", "deb", ref)).stdout.strip()
    assert (home / "containers" / cid / "rootfs/etc/debian_version").read_text().startswith("12")
    assert [c["id"] for c in ps(home)] == [cid]


def test_sixteen_concurrent_creates(registry_http, tmp_path):
    home = tmp_path / "home"
    ref = _pulled(registry_http, home, "busybox", "life-concurrent")

    def create(i: int) -> str:
        return ok(hpcbox(home, "create", "--name", f"c{i}", ref)).stdout.strip()

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(create, range(16)))
    assert len(set(ids)) == 16 and all(len(i) == ID_LEN for i in ids)
    listed = ps(home)
    assert {c["id"] for c in listed} == set(ids)
    assert sorted(c["names"][0] for c in listed) == sorted(f"c{i}" for i in range(16))
    expected = _sha(Path("/bin/busybox"))
    for cid in ids:
        assert _sha(home / "containers" / cid / "rootfs/bin/busybox") == expected
    assert sorted(p.name for p in (home / "containers").iterdir()) == sorted(ids)


def test_export_import_round_trip_of_debian(registry_http, tmp_path):
    home = tmp_path / "home"
    ref = _pulled(registry_http, home, "debian12", "life-export")
    ok(hpcbox(home, "create", "--name", "deb", ref))
    out = tmp_path / "deb.tar"
    ok(hpcbox(home, "export", "-o", str(out), "deb"))
    ok(hpcbox(home, "import", str(out), "local/deb:1"))
    cid = ok(hpcbox(home, "create", "local/deb:1")).stdout.strip()
    original = Path(json.loads(ok(hpcbox(home, "inspect", "deb")).stdout)["Rootfs"])
    copy = home / "containers" / cid / "rootfs"
    assert _sha(copy / "usr/bin/bash") == _sha(original / "usr/bin/bash")
    for name in ("bin", "etc/os-release", "usr/bin/awk"):
        assert os.path.islink(copy / name) == os.path.islink(original / name)
        if os.path.islink(original / name):
            assert os.readlink(copy / name) == os.readlink(original / name)
    ours = sorted(str(p.relative_to(copy)) for p in copy.rglob("*"))
    theirs = sorted(str(p.relative_to(original)) for p in original.rglob("*"))
    assert ours == theirs
