import hashlib
import json
import os
import pathlib

import pytest
from hpcbox_registry_fake import OCI_MANIFEST, make_layer, sha256

from hpcbox_registry import (
    Descriptor,
    DigestMismatchError,
    ImageReference,
    NotFoundError,
    Platform,
    PlatformNotFoundError,
    RegistryConnectionError,
    RegistryServerError,
    UnsupportedMediaTypeError,
    media_types,
)

LAYER1 = make_layer({"etc/os-release": b"ID=fake\n"})
LAYER2 = make_layer({"bin/hello": os.urandom(3000)})


def ref_of(registry, name):
    return ImageReference.parse(f"{registry.host}/{name}")


def test_ping_answers_the_base_url(registry, client):
    assert client.ping(registry.host) == f"http://{registry.host}"


def test_resolve_single_manifest_verifies_config_and_lists_layers(registry, client):
    img = registry.add_image("team/app", "1.0", [LAYER1, LAYER2])
    resolved = client.resolve(ref_of(registry, "team/app:1.0"))
    assert resolved.reference.digest == img["digest"]
    assert resolved.reference.tag == "1.0"
    assert resolved.index is None
    assert resolved.manifest.media_type == media_types.OCI_MANIFEST
    assert resolved.manifest.raw == img["raw"]
    assert resolved.config == img["config"]
    assert resolved.config_descriptor.digest == sha256(img["config"])
    assert [d.digest for d in resolved.layers] == [sha256(LAYER1), sha256(LAYER2)]
    assert [d.size for d in resolved.layers] == [len(LAYER1), len(LAYER2)]
    assert resolved.platform == Platform("linux", "amd64")


def test_manifest_list_selects_the_requested_platform(registry, client):
    amd = registry.add_image("multi", None, [LAYER1], arch="amd64", docker=True)
    arm = registry.add_image("multi", None, [LAYER2], arch="arm64", variant="v8", docker=True)
    armv7 = registry.add_image("multi", None, [LAYER1, LAYER2], arch="arm", variant="v7", docker=True)
    index = registry.add_index(
        "multi",
        "latest",
        [
            ({"os": "linux", "architecture": "amd64"}, amd),
            ({"os": "linux", "architecture": "arm64", "variant": "v8"}, arm),
            ({"os": "linux", "architecture": "arm", "variant": "v7"}, armv7),
            ({"os": "unknown", "architecture": "unknown"}, amd),
        ],
        docker=True,
    )
    ref = ref_of(registry, "multi")
    got = client.resolve(ref, platform="linux/arm64")
    assert got.manifest.digest == arm["digest"]
    assert got.reference.digest == index["digest"]  # pinned to the top-level digest
    assert got.index is not None and got.index.media_type == media_types.DOCKER_MANIFEST_LIST
    assert str(got.platform) == "linux/arm64/v8"
    assert client.resolve(ref, platform=Platform.parse("linux/arm/v8")).manifest.digest == armv7["digest"]
    assert client.resolve(ref, platform="linux/amd64").layers[0].digest == sha256(LAYER1)
    with pytest.raises(PlatformNotFoundError) as err:
        client.resolve(ref, platform="linux/s390x")
    assert "linux/amd64" in str(err.value) and "unknown" not in str(err.value)


def test_index_default_platform_is_the_host(registry, client):
    host = Platform.host()
    mine = registry.add_image("hosty", None, [LAYER1], arch=host.architecture, variant=host.variant)
    other = registry.add_image(
        "hosty", None, [LAYER2], arch="riscv64" if host.architecture != "riscv64" else "s390x"
    )
    registry.add_index(
        "hosty",
        "latest",
        [
            ({"os": "linux", "architecture": json.loads(other["config"])["architecture"]}, other),
            (
                {
                    "os": "linux",
                    "architecture": host.architecture,
                    **({"variant": host.variant} if host.variant else {}),
                },
                mine,
            ),
        ],
    )
    assert client.resolve(ref_of(registry, "hosty")).manifest.digest == mine["digest"]


def test_explicit_platform_must_match_a_single_arch_image(registry, client):
    registry.add_image("single", "latest", [LAYER1], arch="amd64")
    with pytest.raises(PlatformNotFoundError):
        client.resolve(ref_of(registry, "single"), platform="linux/arm64")


def test_pull_by_digest_verifies_the_manifest(registry, client):
    img = registry.add_image("app", "v1", [LAYER1])
    ref = ref_of(registry, f"app@{img['digest']}")
    assert ref.tag is None
    assert client.get_manifest(ref).digest == img["digest"]
    assert client.resolve(ref).reference == ref
    # the registry now serves other bytes under that digest
    registry.manifests[("app", img["digest"])] = (OCI_MANIFEST, img["raw"] + b" ")
    with pytest.raises(DigestMismatchError):
        client.get_manifest(ref)


def test_config_with_wrong_digest_is_refused(registry, client):
    img = registry.add_image("bad", "latest", [LAYER1])
    registry.blobs[sha256(img["config"])] = img["config"].replace(b"amd64", b"AMD64")
    with pytest.raises(DigestMismatchError):
        client.resolve(ref_of(registry, "bad"))


def test_not_found_names_what_is_missing(registry, client):
    registry.add_image("exists", "latest", [LAYER1])
    with pytest.raises(NotFoundError) as err:
        client.get_manifest(ref_of(registry, "exists:nope"))
    assert "manifest" in str(err.value) and "\n" not in str(err.value)


def test_artifact_that_is_not_an_image_is_refused(registry, client):
    cfg = registry.add_blob(b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", **cfg},
        "layers": [],
    }
    registry.add_manifest("chart", "1", OCI_MANIFEST, json.dumps(manifest).encode())
    with pytest.raises(UnsupportedMediaTypeError):
        client.resolve(ref_of(registry, "chart:1"))


def test_fetch_blob_streams_and_verifies(registry, client, tmp_path):
    registry.add_image("app", "latest", [LAYER2])
    desc = client.resolve(ref_of(registry, "app")).layers[0]
    seen = []
    dest = client.fetch_blob(ref_of(registry, "app"), desc, tmp_path / "blob", progress=seen.append)
    assert pathlib.Path(dest).read_bytes() == LAYER2
    assert sum(seen) == len(LAYER2)


def test_fetch_blob_digest_mismatch_deletes_the_file(registry, client, tmp_path):
    registry.add_image("app", "latest", [LAYER2])
    desc = client.resolve(ref_of(registry, "app")).layers[0]
    registry.blobs[desc.digest] = LAYER2[:-1] + bytes([LAYER2[-1] ^ 1])
    with pytest.raises(DigestMismatchError):
        client.fetch_blob(ref_of(registry, "app"), desc, tmp_path / "blob")
    assert not (tmp_path / "blob").exists()


def test_fetch_blob_resumes_after_a_cut_connection(registry, client, tmp_path):
    data = os.urandom(200_000)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(data))
    registry.cut_after[desc.digest] = 70_000
    seen = []
    client.fetch_blob(ref_of(registry, "app"), desc, tmp_path / "blob", progress=seen.append)
    assert (tmp_path / "blob").read_bytes() == data
    gets = registry.seen("/blobs/")
    assert len(gets) == 2
    assert "Range" not in gets[0].headers
    assert gets[1].headers["Range"] == "bytes=70000-"
    assert sum(seen) == len(data)


def test_a_cut_manifest_or_config_is_fetched_again(registry, client):
    registry.add_image("app", "latest", [LAYER2])
    config_digest = client.resolve(ref_of(registry, "app")).config_descriptor.digest
    registry.log.clear()
    registry.manifest_cuts["latest"] = 0  # headers promise the manifest, not one byte follows
    registry.cut_after[config_digest] = 10
    resolved = client.resolve(ref_of(registry, "app"))
    assert resolved.config_descriptor.digest == config_digest
    assert len(registry.seen("/manifests/latest")) == 2
    assert len(registry.seen(f"/blobs/{config_digest}")) == 2


def test_a_manifest_cut_again_and_again_fails_with_one_plain_line(registry, make_client):
    client = make_client(max_retries=2, backoff_factor=0.01)
    registry.add_image("app", "latest", [LAYER2])
    registry.manifest_cuts["latest"] = 3
    registry.manifest_cut_times = 100
    with pytest.raises(RegistryConnectionError) as err:
        client.resolve(ref_of(registry, "app"))
    assert len(registry.seen("/manifests/latest")) == 3  # the first try and max_retries more
    text = str(err.value)
    assert "the connection closed after 3 bytes" in text and "IncompleteRead(" not in text
    assert "\n" not in text


def test_fetch_blob_continues_a_prefix_already_on_disk(registry, client, tmp_path):
    data = os.urandom(50_000)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(data))
    (tmp_path / "blob").write_bytes(data[:12345])
    client.fetch_blob(ref_of(registry, "app"), desc, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data
    assert registry.seen("/blobs/")[0].headers["Range"] == "bytes=12345-"


def test_fetch_blob_restarts_when_the_server_ignores_range(registry, client, tmp_path):
    data = os.urandom(100_000)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(data))
    registry.ignore_range = True
    registry.cut_after[desc.digest] = 40_000
    seen = []
    client.fetch_blob(ref_of(registry, "app"), desc, tmp_path / "blob", progress=seen.append)
    assert (tmp_path / "blob").read_bytes() == data
    assert sum(seen) == len(data)
    assert any(n < 0 for n in seen)


def test_fetch_blob_gives_up_when_cut_again_and_again(registry, make_client, tmp_path):
    client = make_client(max_retries=2)
    data = os.urandom(10_000)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(data))
    registry.ignore_range = True  # every attempt starts over and is cut at the same byte

    class AlwaysCut(dict):
        def pop(self, key, default=None):
            return 5000 if key == desc.digest else default

    registry.cut_after = AlwaysCut()
    with pytest.raises(RegistryConnectionError) as err:
        client.fetch_blob(ref_of(registry, "app"), desc, tmp_path / "blob")
    assert "keeps failing" in str(err.value)


def test_fetch_blobs_in_parallel_fetches_each_digest_once(registry, make_client, tmp_path):
    client = make_client(max_workers=3)
    blobs = [os.urandom(5000 + i) for i in range(6)]
    descs = [Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(b)) for b in blobs]
    got = client.fetch_blobs(
        ref_of(registry, "app"), [*descs, descs[0]], lambda d: tmp_path / d.digest.split(":")[1]
    )
    assert set(got) == {d.digest for d in descs}
    for desc, data in zip(descs, blobs):
        assert pathlib.Path(got[desc.digest]).read_bytes() == data
    assert len(registry.seen("/blobs/")) == len(blobs)


def test_fetch_blobs_raises_the_failure(registry, client, tmp_path):
    good = Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(b"good"))
    missing = Descriptor(
        "application/vnd.oci.image.layer.v1.tar", "sha256:" + hashlib.sha256(b"x").hexdigest(), 1
    )
    with pytest.raises(NotFoundError):
        client.fetch_blobs(ref_of(registry, "app"), [good, missing], lambda d: tmp_path / d.digest[7:])


def test_list_tags_follows_link_pages(registry, client):
    for tag in ["a", "b", "c", "d", "e"]:
        registry.add_image("paged", tag, [LAYER1])
    registry.page_size = 2
    assert client.list_tags(ref_of(registry, "paged")) == ["a", "b", "c", "d", "e"]
    assert len(registry.seen("/tags/list")) == 3


def test_search_on_a_registry_given_in_the_term(registry, client):
    registry.search_index = [
        {"name": "library/alpine", "description": "small", "star_count": 10, "is_official": True},
        {"name": "someone/alpine-tools", "description": "", "star_count": 1},
        {"name": "library/debian", "description": "", "star_count": 5, "is_official": True},
    ]
    results = client.search(f"{registry.host}/alpine", limit=5)
    assert [r.name for r in results] == ["library/alpine", "someone/alpine-tools"]
    assert results[0].official and results[0].stars == 10 and results[0].registry == registry.host
    assert registry.seen("/v1/search")[0].query == {"q": ["alpine"], "n": ["5"]}
    assert len(client.search("alpine", limit=1, registry=registry.host)) == 1


def test_mirror_is_tried_first_and_the_registry_is_the_fallback(registry, storage, make_client, tmp_path):
    # storage plays the mirror: it has one image, the registry has another
    mirrored = storage.add_image("lib/app", "1", [LAYER1])
    registry.add_image("lib/app", "1", [LAYER1])
    only_upstream = registry.add_image("lib/app", "2", [LAYER2])
    client = make_client(mirrors={registry.host: [f"http://{storage.host}"]})
    assert client.get_manifest(ref_of(registry, "lib/app:1")).digest == mirrored["digest"]
    assert registry.seen("/manifests/") == []
    got = client.resolve(ref_of(registry, "lib/app:2"))
    assert got.manifest.digest == only_upstream["digest"]
    assert storage.seen("/manifests/2")  # asked the mirror first
    client.fetch_blob(ref_of(registry, "lib/app:2"), got.layers[0], tmp_path / "l")
    assert (tmp_path / "l").read_bytes() == LAYER2


def test_mirror_that_is_down_falls_back(registry, make_client):
    img = registry.add_image("app", "latest", [LAYER1])
    client = make_client(mirrors={registry.host: ["127.0.0.1:9"]})
    assert client.get_manifest(ref_of(registry, "app")).digest == img["digest"]


def test_context_manager_closes(registry, make_client):
    registry.add_image("app", "latest", [LAYER1])
    with make_client() as client:
        client.get_manifest(ref_of(registry, "app"))
    assert client.transport._sessions == []


def test_a_body_that_ends_short_without_error_is_resumed(registry, client, tmp_path):
    data = os.urandom(30_000)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(data))
    registry.can("/blobs/", 200, {"Content-Type": "application/octet-stream"}, body=data[:1000])
    client.fetch_blob(ref_of(registry, "app"), desc, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data
    assert registry.seen("/blobs/")[-1].headers["Range"] == "bytes=1000-"


def test_a_corrupt_prefix_on_disk_is_fetched_again_from_scratch(registry, client, tmp_path):
    data = os.urandom(30_000)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(data))
    (tmp_path / "blob").write_bytes(b"\0" * 5000)
    client.fetch_blob(ref_of(registry, "app"), desc, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data
    gets = registry.seen("/blobs/")
    assert gets[0].headers["Range"] == "bytes=5000-" and "Range" not in gets[-1].headers


def test_a_mirror_given_as_one_string(registry, storage, make_client):
    img = storage.add_image("app", "latest", [LAYER1])
    client = make_client(mirrors={registry.host: storage.url})
    assert client.get_manifest(ref_of(registry, "app")).digest == img["digest"]


def test_fetch_blobs_reuses_its_threads_and_sessions(registry, make_client, tmp_path):
    client = make_client(max_workers=2)
    for round_ in range(3):
        descs = [
            Descriptor("application/octet-stream", **registry.add_blob(os.urandom(100 + i + 10 * round_)))
            for i in range(4)
        ]
        client.fetch_blobs(ref_of(registry, "app"), descs, lambda d: tmp_path / d.digest[7:])
    assert len(client.transport._sessions) <= 2
    client.close()
    assert client.transport._sessions == []


def test_a_redirect_to_a_file_url_fails_at_once_naming_the_host(registry, make_client):
    client = make_client(max_retries=5)
    registry.add_image("app", "latest", [LAYER2])
    registry.can(r"/manifests/latest$", 302, {"Location": "file:///etc/passwd"}, times=10)
    with pytest.raises(RegistryServerError) as err:
        client.resolve(ref_of(registry, "app"))
    text = str(err.value)
    assert f"{registry.host} redirected GET" in text and "file: URL" in text
    assert client.sleeps == [] and len(registry.seen("/manifests/latest")) == 1
