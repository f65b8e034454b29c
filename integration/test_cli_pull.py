"""`hpcbox pull` and friends against real registries (three configurations), checked with skopeo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from test_cli_common import assert_store_valid, hpcbox, hpcbox_env, images, login, login_args, ok, sha256_file

REGISTRIES = ["registry_http", "registry_tls_basic", "registry_token"]


def _repo(registry, name: str) -> str:
    # the token registry grants the test user hpcbox/*; the other two accept anything
    return f"hpcbox/{name}"


@pytest.mark.parametrize("fixture", REGISTRIES)
def test_pull_by_tag_and_by_digest(fixture, request, tmp_path):
    registry = request.getfixturevalue(fixture)
    pushed = registry.push("busybox", _repo(registry, "pull-basic"), "1.0")
    home = tmp_path / "home"
    login(home, registry)
    opts = login_args(registry)

    proc = ok(hpcbox(home, *opts, "pull", pushed.ref))
    assert proc.stdout == f"{pushed.ref}\n"
    assert f"Digest: {pushed.digest}" in proc.stderr
    listed = images(home)
    assert len(listed) == 1
    assert listed[0]["tags"] == [pushed.ref]
    repo = pushed.ref.rsplit(":", 1)[0]
    assert listed[0]["digests"] == [f"{repo}@{pushed.digest}"]
    index = assert_store_valid(home)
    assert {e["annotations"]["org.opencontainers.image.ref.name"] for e in index["manifests"]} == \
        {pushed.ref, f"{repo}@{pushed.digest}"}

    # by digest, into a fresh store
    other = tmp_path / "by-digest"
    login(other, registry)
    ok(hpcbox(other, *opts, "pull", f"{repo}@{pushed.digest}"))
    listed = images(other)
    assert listed[0]["tags"] == [] and listed[0]["digests"] == [f"{repo}@{pushed.digest}"]
    assert listed[0]["manifest"] == images(home)[0]["manifest"]
    assert_store_valid(other)

    # the remote manifest as served
    remote = json.loads(ok(hpcbox(home, *opts, "manifest", "inspect", pushed.ref)).stdout)
    assert remote["layers"][0]["digest"] in json.dumps(
        json.loads(ok(hpcbox(home, "inspect", pushed.ref)).stdout)["Manifest"])


def test_skopeo_and_umoci_read_the_store(registry_http, tmp_path):
    pushed = registry_http.push("busybox-docker", "hpcbox/docker-types", "1")
    home = tmp_path / "home"
    ok(hpcbox(home, "pull", pushed.ref))
    for name in (pushed.ref, f"{pushed.ref.rsplit(':', 1)[0]}@{pushed.digest}"):
        out = subprocess.run(["skopeo", "inspect", f"oci:{home}/images:{name}"], capture_output=True,
                             text=True, check=True).stdout
        assert json.loads(out)["Architecture"] == "amd64"
    raw = json.loads(subprocess.run(["skopeo", "inspect", "--raw", f"oci:{home}/images:{pushed.ref}"],
                                    capture_output=True, text=True, check=True).stdout)
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"  # Docker types stored as OCI
    if shutil.which("umoci"):
        bundle = tmp_path / "bundle"
        subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{home}/images:{pushed.ref}",
                        str(bundle)], capture_output=True, text=True, check=True)
        assert (bundle / "rootfs/bin/busybox").exists() or (bundle / "rootfs/bin").exists()


def test_platform_selects_the_arm64_entry(registry_http, tmp_path):
    pushed = registry_http.push("multiarch", "hpcbox/multiarch", "1")
    home = tmp_path / "home"
    proc = ok(hpcbox(home, "pull", "--platform", "linux/arm64", pushed.ref))
    assert "Platform: linux/arm64" in proc.stderr
    listed = images(home)
    assert listed[0]["platform"]["architecture"] == "arm64"
    config = json.loads(ok(hpcbox(home, "inspect", pushed.ref)).stdout)["Config"]
    assert config["architecture"] == "arm64"
    index = json.loads(ok(hpcbox(home, "manifest", "inspect", pushed.ref)).stdout)
    arm = [m for m in index["manifests"] if m["platform"]["architecture"] == "arm64"]
    assert listed[0]["manifest"] == arm[0]["digest"]
    assert_store_valid(home)
    out = subprocess.run(["skopeo", "inspect", f"oci:{home}/images:{pushed.ref}"], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out)["Architecture"] == "arm64"


def test_zstd_image_pulls_and_verifies(registry_http, tmp_path):
    pushed = registry_http.push("zstd", "hpcbox/zstd", "1")
    home = tmp_path / "home"
    ok(hpcbox(home, "pull", pushed.ref))
    manifest = json.loads(ok(hpcbox(home, "inspect", pushed.ref)).stdout)["Manifest"]
    layer = manifest["layers"][0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    blob = home / "images/blobs/sha256" / layer["digest"].split(":")[1]
    assert blob.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame magic
    assert sha256_file(blob) == layer["digest"].split(":")[1]
    assert_store_valid(home)


def test_eight_concurrent_pulls_share_one_store(registry_http, tmp_path):
    pushed = registry_http.push("busybox", "hpcbox/concurrent", "1")
    home = tmp_path / "home"
    procs = [subprocess.Popen([sys.executable, "-m", "hpcbox", "--home", str(home), "pull", "-q", pushed.ref],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hpcbox_env())
             for _ in range(8)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [r[0] for r in results] == [0] * 8, results
    index = assert_store_valid(home)
    assert len(index["manifests"]) == 2  # the tag and the digest reference, once each
    manifest = json.loads(ok(hpcbox(home, "inspect", pushed.ref)).stdout)["Manifest"]
    expected = {d["digest"].split(":")[1] for d in [manifest["config"], *manifest["layers"]]}
    expected.add(index["manifests"][0]["digest"].split(":")[1])
    assert {p.name for p in (home / "images/blobs/sha256").iterdir()} == expected
    assert list((home / "tmp").iterdir()) == []
    layer = manifest["layers"][0]["digest"]
    log = registry_http.log_path.read_text()
    downloads = log.count(f'"GET /v2/hpcbox/concurrent/blobs/{layer} HTTP/1.1" 200')
    assert downloads == 1  # the other seven waited on the blob lock and found it stored


def test_rmi_tag_and_gc_on_real_images(registry_http, tmp_path):
    a = registry_http.push("busybox", "hpcbox/gc-a", "1")
    b = registry_http.push("layered", "hpcbox/gc-b", "1")
    home = tmp_path / "home"
    ok(hpcbox(home, "pull", "-q", a.ref))
    ok(hpcbox(home, "pull", "-q", b.ref))
    ok(hpcbox(home, "tag", a.ref, "mine/alias:2"))
    assert len(images(home)) == 2
    ok(hpcbox(home, "rmi", a.ref))
    assert len(images(home)) == 2  # still named docker.io/mine/alias:2
    ok(hpcbox(home, "rmi", "mine/alias:2", b.ref))
    assert images(home) == []
    assert list((home / "images/blobs/sha256").iterdir()) == []
    assert_store_valid(home)


def test_version_and_help_from_the_console_entry_point(tmp_path):
    proc = ok(subprocess.run([sys.executable, "-m", "hpcbox", "--version"], capture_output=True, text=True,
                             check=False))
    assert proc.stdout.startswith("hpcbox ")
    ok(hpcbox(tmp_path, "version"))


def test_docker_hub_names_through_a_mirror_from_env_and_config(registry_http, tmp_path):
    registry_http.push("busybox", "library/mirrored", "1")
    home = tmp_path / "home"
    env = hpcbox_env(HPCBOX_REGISTRY_MIRRORS=f"docker.io={registry_http.url}")
    proc = ok(hpcbox(home, "pull", "mirrored:1", env=env))
    assert proc.stdout == "docker.io/library/mirrored:1\n"
    assert images(home)[0]["tags"] == ["docker.io/library/mirrored:1"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"mirrors": {"docker.io": [registry_http.url]}}))
    ok(hpcbox(other, "pull", "-q", "mirrored:1"))
    assert images(other)[0]["manifest"] == images(home)[0]["manifest"]
    assert_store_valid(other)
