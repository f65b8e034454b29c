"""The test images: valid OCI layouts (checked by skopeo, umoci and our own digest walk), as described."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from hpcbox_testing import images

ALL_BUT_DEBIAN = [name for name in images.IMAGE_NAMES if name != "debian12"]
NAMES = [*ALL_BUT_DEBIAN, pytest.param("debian12", marks=pytest.mark.slow)]


def run(*command):
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


def read_blob(layout: Path, descriptor: dict) -> bytes:
    data = images.blob_path(layout, descriptor["digest"]).read_bytes()
    assert len(data) == descriptor["size"], descriptor
    assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
    return data


def image_manifests(layout: Path):
    """(platform, manifest dict) of every image manifest under the layout's ``latest``, digests verified."""
    top = images.top_descriptor(layout)
    document = json.loads(read_blob(layout, top))
    if top["mediaType"] == images.OCI_INDEX:
        return [(d["platform"], json.loads(read_blob(layout, d))) for d in document["manifests"]]
    return [(None, document)]


def layer_members(layout: Path, descriptor: dict) -> list:
    data = read_blob(layout, descriptor)
    if descriptor["mediaType"].endswith("zstd"):
        data = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    elif "gzip" in descriptor["mediaType"]:
        data = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


@pytest.mark.parametrize("name", NAMES)
def test_layout_is_valid_and_digests_match(test_images, name):
    layout = test_images.layout(name)
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert "latest" in run("umoci", "ls", "--layout", str(layout)).split()
    for _platform, manifest in image_manifests(layout):
        config = json.loads(read_blob(layout, manifest["config"]))
        assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
        for layer in manifest["layers"]:
            read_blob(layout, layer)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "busybox-docker"])
def test_skopeo_reads_the_layout(test_images, name):
    layout = test_images.layout(name)
    inspected = json.loads(run("skopeo", "inspect", f"oci:{layout}:latest"))
    assert inspected["Os"] == "linux"
    assert inspected["Architecture"] == "amd64"


def test_busybox_is_one_static_layer(test_images):
    ((_, manifest),) = image_manifests(test_images.layout("busybox"))
    assert images.top_descriptor(test_images.layout("busybox"))["mediaType"] == images.OCI_MANIFEST
    assert "mediaType" not in manifest  # as umoci writes it: OCI 1.0 made the field optional
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    members = {m.name: m for m in layer_members(test_images.layout("busybox"), layer)}
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"


def test_busybox_docker_has_docker_media_types(test_images):
    layout = test_images.layout("busybox-docker")
    assert images.top_descriptor(layout)["mediaType"] == images.DOCKER_MANIFEST
    ((_, manifest),) = image_manifests(layout)
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"


def test_zstd_layer_is_zstd(test_images):
    layout = test_images.layout("zstd")
    ((_, manifest),) = image_manifests(layout)
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert read_blob(layout, layer)[:4] == b"\x28\xb5\x2f\xfd"
    assert "bin/busybox" in [m.name for m in layer_members(layout, layer)]


def test_multiarch_index_has_amd64_and_arm64_binaries(test_images):
    layout = test_images.layout("multiarch")
    by_arch = {
        platform["architecture"]: (platform, manifest) for platform, manifest in image_manifests(layout)
    }
    assert sorted(by_arch) == ["amd64", "arm64"]
    assert by_arch["arm64"][0].get("variant") == "v8"
    elf_machine = {"amd64": 62, "arm64": 183}  # EM_X86_64, EM_AARCH64
    for arch, (_, manifest) in by_arch.items():
        assert json.loads(read_blob(layout, manifest["config"]))["architecture"] == arch
        data = gzip.decompress(read_blob(layout, manifest["layers"][0]))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            head = tar.extractfile("bin/busybox").read(20)
        assert head[:4] == b"\x7fELF"
        assert int.from_bytes(head[18:20], "little") == elf_machine[arch]


def test_layered_unpacks_as_described(test_images, tmp_path):
    """umoci (the oracle of the layers package) gives LAYERED_EXPECTED from the layered image."""
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--rootless", "--image", f"{test_images.layout('layered')}:latest", str(bundle))
    rootfs = bundle / "rootfs"
    try:
        for path, expected in images.LAYERED_EXPECTED.items():
            st = os.lstat(rootfs / path)
            kind = expected[0]
            if kind == "file":
                assert stat.S_ISREG(st.st_mode), path
                assert stat.S_IMODE(st.st_mode) == expected[1], path
                (rootfs / path).chmod(0o644)
                assert (rootfs / path).read_bytes() == expected[2], path
            elif kind == "dir":
                assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == expected[1], path
            elif kind == "symlink":
                assert os.readlink(rootfs / path) == expected[1], path
            else:
                assert st.st_ino == os.lstat(rootfs / expected[1]).st_ino, path
        for path in images.LAYERED_ABSENT:
            assert not os.path.lexists(rootfs / path), path
        assert not [p for p in rootfs.rglob("*") if p.name.startswith(".wh.")]
    finally:
        for path in rootfs.rglob("*"):  # 0000 file, 0700 dir: let tmp_path clean-up delete them
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)


@pytest.mark.slow
def test_debian12_is_bookworm_minbase(test_images):
    layout = test_images.layout("debian12")
    ((_, manifest),) = image_manifests(layout)
    members = {m.name.lstrip("./"): m for m in layer_members(layout, manifest["layers"][0])}
    assert "usr/bin/apt-get" in members and "bin" in members
    with tarfile.open(images.blob_path(layout, manifest["layers"][0]["digest"])) as tar:
        version = tar.extractfile(members["etc/debian_version"]).read().decode()
    assert version.startswith("12.")


def test_layouts_are_cached_by_recipe(tmp_path, test_images):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(test_images.input_path(images.ARM64_BUSYBOX_DEB), inputs)
    first = images.TestImages(cache_dir=tmp_path / "cache", inputs_dir=inputs)
    layout = first.layout("multiarch")
    again = images.TestImages(cache_dir=tmp_path / "cache", inputs_dir=inputs)
    assert again.layout("multiarch") == layout
    assert again.cache_key("multiarch") == first.cache_key("multiarch")
    os.utime(inputs / images.ARM64_BUSYBOX_DEB, ns=(0, 0))  # a changed input is a changed recipe
    assert images.TestImages(cache_dir=tmp_path / "cache", inputs_dir=inputs).layout("multiarch") != layout
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".build-")]


def test_missing_input_fails_with_the_fix(tmp_path):
    builder = images.TestImages(cache_dir=tmp_path / "cache", inputs_dir=tmp_path / "empty")
    with pytest.raises(images.MissingInputError, match=r"sudo scripts/prepare-test-inputs"):
        builder.layout("debian12")


def test_unknown_image_name_is_refused(test_images):
    with pytest.raises(ValueError, match="choose one of"):
        test_images.layout("alpine")
