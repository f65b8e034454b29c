import base64
import hashlib
import json

import pytest
from hpcbox_registry_fake import make_layer

from hpcbox_registry import ImageReference, Manifest, UnsupportedMediaTypeError, media_types
from hpcbox_registry.errors import RegistryServerError

L1, L2 = make_layer({"base": b"1"}), make_layer({"top": b"2"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_schema1(payload_obj):
    """A schema1 manifest signed the prettyjws way: the digest covers the payload without signatures."""
    payload = json.dumps(payload_obj, indent=3).encode()
    tail = payload[-2:]  # "\n}"
    protected = _b64url(json.dumps({"formatLength": len(payload) - 2, "formatTail": _b64url(tail)}).encode())
    sig = {"header": {"alg": "ES256"}, "signature": "c2ln", "protected": protected}
    raw = payload[:-2] + b',\n   "signatures": ' + json.dumps([sig]).encode() + tail
    return raw, "sha256:" + hashlib.sha256(payload).hexdigest()


def schema1_payload_obj(registry):
    d1, d2 = registry.add_blob(L1)["digest"], registry.add_blob(L2)["digest"]
    return {
        "schemaVersion": 1,
        "name": "old",
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": d2}, {"blobSum": d1}, {"blobSum": d1}],
        "history": [
            {
                "v1Compatibility": json.dumps(
                    {
                        "id": "c",
                        "os": "linux",
                        "architecture": "amd64",
                        "config": {"Cmd": ["sh"], "Env": ["A=1"]},
                        "created": "2020-01-01T00:00:00Z",
                    }
                )
            },
            {
                "v1Compatibility": json.dumps(
                    {
                        "id": "b",
                        "throwaway": True,
                        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ENV A=1"]},
                    }
                )
            },
            {"v1Compatibility": json.dumps({"id": "a"})},
        ],
    }


def test_kind_detection_from_body_and_header():
    oci = json.dumps(
        {"schemaVersion": 2, "config": {"digest": "sha256:" + "0" * 64, "size": 1}, "layers": []}
    )
    assert Manifest.from_bytes(oci.encode(), "application/json").media_type == media_types.OCI_MANIFEST
    idx = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert Manifest.from_bytes(idx, None).media_type == media_types.OCI_INDEX
    m = Manifest.from_bytes(idx, media_types.DOCKER_MANIFEST_LIST)
    assert m.media_type == media_types.DOCKER_MANIFEST_LIST and m.is_index
    assert m.digest == "sha256:" + hashlib.sha256(idx).hexdigest()
    with pytest.raises(UnsupportedMediaTypeError):
        Manifest.from_bytes(json.dumps({"mediaType": "application/vnd.foo+json"}).encode())
    with pytest.raises(RegistryServerError):
        Manifest.from_bytes(b"<html>")


def test_signed_schema1_digest_covers_the_payload(registry):
    raw, digest = signed_schema1(schema1_payload_obj(registry))
    m = Manifest.from_bytes(raw, media_types.DOCKER_MANIFEST_V1_SIGNED)
    assert m.is_schema1 and m.digest == digest


def test_resolve_schema1_synthesises_config_and_orders_layers(registry, client, tmp_path):
    raw, digest = signed_schema1(schema1_payload_obj(registry))
    registry.manifests[("old", "latest")] = (media_types.DOCKER_MANIFEST_V1_SIGNED, raw)
    registry.manifests[("old", digest)] = (media_types.DOCKER_MANIFEST_V1_SIGNED, raw)
    ref = ImageReference.parse(f"{registry.host}/old")
    got = client.resolve(ref)
    assert got.manifest.media_type == media_types.DOCKER_MANIFEST_V1_SIGNED
    assert [d.digest for d in got.layers] == [
        registry.add_blob(L1)["digest"],
        registry.add_blob(L2)["digest"],
    ]
    assert all(d.media_type == media_types.DOCKER_LAYER_GZIP for d in got.layers)
    config = json.loads(got.config)
    assert config["config"]["Env"] == ["A=1"] and config["os"] == "linux"
    assert "diff_ids" not in config["rootfs"]
    assert [h.get("empty_layer", False) for h in config["history"]] == [False, True, False]
    assert got.config_descriptor.digest == "sha256:" + hashlib.sha256(got.config).hexdigest()
    assert str(got.platform) == "linux/amd64"
    # pull by digest: the digest of the payload is accepted
    assert client.get_manifest(ref.with_digest(digest)).digest == digest
    # layers of unknown size stream fine
    dest = client.fetch_blobs(ref, got.layers, lambda d: tmp_path / d.digest[7:])
    assert sorted((tmp_path / p).read_bytes() for p in dest.values()) == sorted([L1, L2])
