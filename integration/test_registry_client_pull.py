"""hpcbox_registry pulls for real from the three fixture registries: by tag, by digest, every image kind."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from hpcbox_testing import images

from hpcbox_registry import (
    CredentialStore,
    ImageReference,
    Platform,
    PlatformNotFoundError,
    RegistryClient,
    RegistryConfig,
    media_types,
)


def make_client(registry, tmp_path, credentials=True, **settings):
    """A client that trusts the fixture CA and knows the fixture credentials (unless told not to)."""
    store = CredentialStore(
        path=str(tmp_path / "credentials.json"), docker_config=str(tmp_path / "docker.json")
    )
    if credentials and registry.username:
        store.set(registry.host, registry.username, registry.password)
    ca_bundle = str(registry.ca_bundle) if registry.ca_bundle else None
    return RegistryClient(RegistryConfig(ca_bundle=ca_bundle, **settings), credentials=store)


def sha256_file(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def layout_image(test_images, name, arch=None):
    """(manifest dict, config bytes) of a built layout, to compare with what the client fetched."""
    layout = test_images.layout(name)
    top = images.top_descriptor(layout)
    document = json.loads(images.blob_path(layout, top["digest"]).read_bytes())
    if top["mediaType"] == images.OCI_INDEX:
        (chosen,) = [m for m in document["manifests"] if m["platform"]["architecture"] == arch]
        document = json.loads(images.blob_path(layout, chosen["digest"]).read_bytes())
    return document, images.blob_path(layout, document["config"]["digest"]).read_bytes()


def pull(client, ref, resolved, dest_dir):
    """fetch_blobs every layer of ``resolved`` into dest_dir; return {digest: path}."""
    dest_dir.mkdir(exist_ok=True)
    paths = {}

    def dest_for(descriptor):
        paths[descriptor.digest] = dest_dir / descriptor.digest.replace(":", "-")
        return paths[descriptor.digest]

    client.fetch_blobs(ref, resolved.layers, dest_for)
    return paths


REGISTRIES = ["registry_http", "registry_tls_basic", "registry_token"]


@pytest.mark.parametrize("fixture", REGISTRIES)
def test_pull_by_tag_then_by_digest(fixture, request, tmp_path, test_images):
    registry = request.getfixturevalue(fixture)
    pushed = registry.push("busybox", "hpcbox/pull-busybox", "1.0")
    expected_manifest, expected_config = layout_image(test_images, "busybox")
    with make_client(registry, tmp_path) as client:
        client.ping(registry.host)
        ref = ImageReference.parse(pushed.ref)
        resolved = client.resolve(ref)
        assert resolved.reference.digest == pushed.digest
        assert resolved.index is None
        assert resolved.manifest.digest == pushed.digest
        assert resolved.manifest.media_type == images.OCI_MANIFEST
        assert resolved.config == expected_config
        assert [(d.digest, d.size) for d in resolved.layers] == [
            (d["digest"], d["size"]) for d in expected_manifest["layers"]
        ]
        paths = pull(client, ref, resolved, tmp_path / "by-tag")
        for layer in resolved.layers:
            assert sha256_file(paths[layer.digest]) == layer.digest

        by_digest = ImageReference.parse(pushed.ref.rsplit(":", 1)[0] + "@" + pushed.digest)
        assert by_digest.tag is None
        again = client.resolve(by_digest)
        assert again.manifest.raw == resolved.manifest.raw
        assert [d.digest for d in again.layers] == [d.digest for d in resolved.layers]
        paths = pull(client, by_digest, again, tmp_path / "by-digest")
        assert all(sha256_file(paths[d.digest]) == d.digest for d in again.layers)


@pytest.mark.parametrize("fixture", REGISTRIES)
def test_get_manifest_serves_the_pushed_bytes(fixture, request, tmp_path):
    registry = request.getfixturevalue(fixture)
    pushed = registry.push("layered", "hpcbox/manifest-bytes", "v2")
    with make_client(registry, tmp_path) as client:
        manifest = client.get_manifest(ImageReference.parse(pushed.ref))
    assert manifest.digest == pushed.digest == "sha256:" + hashlib.sha256(manifest.raw).hexdigest()
    assert len(manifest.data["layers"]) == 4


def test_anonymous_pull_of_a_public_repository_with_tokens(registry_token, tmp_path):
    pushed = registry_token.push("busybox", "public/anonymous", "latest")
    before = len(registry_token.token_server.issued)
    with make_client(registry_token, tmp_path, credentials=False) as client:
        resolved = client.resolve(ImageReference.parse(pushed.ref))
        paths = pull(client, resolved.reference, resolved, tmp_path / "blobs")
    assert all(sha256_file(paths[d.digest]) == d.digest for d in resolved.layers)
    new_tokens = registry_token.token_server.issued[before:]
    assert new_tokens and all(claims["sub"] == "" for claims in new_tokens)


def test_platform_selection_from_a_multiarch_index(registry_http, tmp_path, test_images):
    pushed = registry_http.push("multiarch", "hpcbox/multiarch", "latest")
    ref = ImageReference.parse(pushed.ref)
    arm_manifest, arm_config = layout_image(test_images, "multiarch", "arm64")
    with make_client(registry_http, tmp_path) as client:
        resolved = client.resolve(ref, platform=Platform.parse("linux/arm64"))
        assert resolved.index is not None and resolved.index.digest == pushed.digest
        assert resolved.reference.digest == pushed.digest  # pinned to the top-level index
        assert str(resolved.platform).startswith("linux/arm64")
        assert resolved.config == arm_config
        assert json.loads(resolved.config)["architecture"] == "arm64"
        paths = pull(client, ref, resolved, tmp_path / "arm64")
        (layer,) = resolved.layers
        assert layer.digest == arm_manifest["layers"][0]["digest"]
        binary = gzip.decompress(paths[layer.digest].read_bytes())
        assert b"\x7fELF\x02\x01\x01" in binary and b"bin/busybox" in binary

        amd = client.resolve(ref, platform="linux/amd64")
        assert json.loads(amd.config)["architecture"] == "amd64"
        assert amd.manifest.digest != resolved.manifest.digest
        with pytest.raises(PlatformNotFoundError):
            client.resolve(ref, platform="linux/s390x")


def test_zstd_layer_is_fetched_and_verified(registry_tls_basic, tmp_path):
    pushed = registry_tls_basic.push("zstd", "hpcbox/zstd", "latest")
    with make_client(registry_tls_basic, tmp_path) as client:
        resolved = client.resolve(ImageReference.parse(pushed.ref))
        (layer,) = resolved.layers
        assert layer.media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
        assert media_types.layer_compression(layer.media_type) == "zstd"
        paths = pull(client, resolved.reference, resolved, tmp_path / "zstd")
    data = paths[layer.digest].read_bytes()
    assert data[:4] == b"\x28\xb5\x2f\xfd" and len(data) == layer.size


def test_docker_schema2_image(registry_token, tmp_path):
    pushed = registry_token.push("busybox-docker", "hpcbox/docker-types", "latest")
    with make_client(registry_token, tmp_path) as client:
        resolved = client.resolve(ImageReference.parse(pushed.ref))
        assert resolved.manifest.media_type == images.DOCKER_MANIFEST == pushed.media_type
        assert [d.media_type for d in resolved.layers] == [
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ]
        assert media_types.layer_compression(resolved.layers[0].media_type) == "gzip"
        paths = pull(client, resolved.reference, resolved, tmp_path / "docker")
    assert all(sha256_file(paths[d.digest]) == d.digest for d in resolved.layers)


def test_list_tags(registry_tls_basic, tmp_path):
    for tag in ("a", "b", "c"):
        registry_tls_basic.push("busybox", "hpcbox/tags", tag)
    with make_client(registry_tls_basic, tmp_path) as client:
        assert sorted(client.list_tags(ImageReference.parse(f"{registry_tls_basic.host}/hpcbox/tags"))) == [
            "a",
            "b",
            "c",
        ]


@pytest.mark.parametrize("fixture", REGISTRIES)
def test_parallel_fetch_of_a_multi_layer_image(fixture, request, tmp_path, test_images):
    registry = request.getfixturevalue(fixture)
    pushed = registry.push("layered", "hpcbox/layered", "latest")
    expected_manifest, _ = layout_image(test_images, "layered")
    added = []
    with make_client(registry, tmp_path, max_workers=4) as client:
        resolved = client.resolve(ImageReference.parse(pushed.ref))
        dest = tmp_path / "blobs"
        dest.mkdir()
        client.fetch_blobs(
            resolved.reference,
            resolved.layers,
            lambda d: dest / d.digest.split(":")[1],
            progress=added.append,
        )
    assert [d.digest for d in resolved.layers] == [d["digest"] for d in expected_manifest["layers"]]
    for layer in resolved.layers:
        assert sha256_file(dest / layer.digest.split(":")[1]) == layer.digest
    assert sum(added) == sum(d.size for d in resolved.layers)
