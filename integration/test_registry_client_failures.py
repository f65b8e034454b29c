"""hpcbox_registry against real failures: corrupted blobs, cut connections, stale tokens, bad credentials,
denied scopes, unreachable or untrusted registries."""

from __future__ import annotations

import hashlib
import re
import time

import pytest
from hpcbox_testing.ports import refused_port
from hpcbox_testing.tokenserver import REGISTRY_LEEWAY_S

from hpcbox_registry import (
    AuthenticationError,
    AuthorizationError,
    CredentialStore,
    DigestMismatchError,
    ImageReference,
    NotFoundError,
    RegistryClient,
    RegistryConfig,
    RegistryConnectionError,
    RegistryError,
    TLSVerificationError,
)


def make_client(registry, tmp_path, username=None, password=None, **settings):
    """A client trusting the fixture CA, with the fixture credentials or the ones given."""
    store = CredentialStore(
        path=str(tmp_path / "credentials.json"), docker_config=str(tmp_path / "docker.json")
    )
    username = username or registry.username
    if username:
        store.set(registry.host, username, password or registry.password)
    ca_bundle = str(registry.ca_bundle) if registry.ca_bundle else None
    return RegistryClient(RegistryConfig(ca_bundle=ca_bundle, **settings), credentials=store)


def one_line(error: Exception) -> str:
    text = str(error)
    assert text and "\n" not in text.strip(), repr(text)
    return text


@pytest.fixture
def corrupted_layer(registry_http):
    """A pushed image whose only layer has one byte flipped in the registry's storage (restored after)."""
    pushed = registry_http.push("busybox", "hpcbox/corrupt", "latest")
    with RegistryClient(RegistryConfig()) as client:
        layer = client.resolve(ImageReference.parse(pushed.ref)).layers[0]
    path = registry_http.blob_path(layer.digest)
    original = path.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    try:
        yield pushed, layer
    finally:
        path.write_bytes(original)


def test_corrupted_blob_raises_and_leaves_nothing(registry_http, corrupted_layer, tmp_path):
    pushed, layer = corrupted_layer
    dest = tmp_path / "layer"
    with make_client(registry_http, tmp_path) as client:
        ref = ImageReference.parse(pushed.ref)
        with pytest.raises(DigestMismatchError) as error:
            client.fetch_blob(ref, layer, dest)
        assert layer.digest in one_line(error.value)
        assert not dest.exists()
        with pytest.raises(DigestMismatchError):
            client.fetch_blobs(ref, [layer], lambda descriptor: tmp_path / "many")
        assert not (tmp_path / "many").exists()


@pytest.mark.parametrize("fixture", ["registry_http", "registry_tls_basic", "registry_token"])
def test_cut_connection_is_resumed_with_range(fixture, request, drop_proxy, tmp_path):
    registry = request.getfixturevalue(fixture)
    pushed = registry.push("busybox", "hpcbox/resume", "latest")
    with drop_proxy(registry.host, 400_000) as proxy:
        ref = ImageReference.parse(f"{proxy.host}/hpcbox/resume:latest")
        dest = tmp_path / "layer"
        added = []
        store = CredentialStore(path=str(tmp_path / "c.json"), docker_config=str(tmp_path / "d.json"))
        if registry.username:
            store.set(proxy.host, registry.username, registry.password)
        config = RegistryConfig(ca_bundle=str(registry.ca_bundle) if registry.ca_bundle else None)
        with RegistryClient(config, credentials=store) as client:
            resolved = client.resolve(ref)
            assert resolved.reference.digest == pushed.digest
            (layer,) = resolved.layers
            assert layer.size > 400_000  # so the cut falls inside the blob
            client.fetch_blob(ref, layer, dest, progress=added.append)
        assert proxy.drops_done == 1
        sent = "".join(proxy.request_text())
    assert "sha256:" + hashlib.sha256(dest.read_bytes()).hexdigest() == layer.digest
    if registry.ca_bundle is None:  # the proxy sees request heads only in plain HTTP
        starts = [int(n) for n in re.findall(r"(?im)^range:\s*bytes=(\d+)-", sent)]
        assert starts and all(start > 0 for start in starts), sent
    assert sum(added) == layer.size  # the resumed part was not counted (nor fetched) twice


def test_corrupted_config_fails_resolve(registry_http, tmp_path):
    pushed = registry_http.push("layered", "hpcbox/bad-config", "latest")
    with make_client(registry_http, tmp_path) as client:
        ref = ImageReference.parse(pushed.ref)
        config_digest = client.get_manifest(ref).data["config"]["digest"]
        path = registry_http.blob_path(config_digest)
        original = path.read_bytes()
        path.write_bytes(original.replace(b"amd64", b"arm64"))
        try:
            with pytest.raises(DigestMismatchError) as error:
                client.resolve(ref)
        finally:
            path.write_bytes(original)
    assert config_digest in one_line(error.value)


def test_existing_prefix_is_resumed(registry_tls_basic, tmp_path):
    pushed = registry_tls_basic.push("busybox", "hpcbox/prefix", "latest")
    with make_client(registry_tls_basic, tmp_path) as client:
        ref = ImageReference.parse(pushed.ref)
        (layer,) = client.resolve(ref).layers
        whole = registry_tls_basic.blob_path(layer.digest).read_bytes()
        dest = tmp_path / "layer"
        dest.write_bytes(whole[:12345])
        added = []
        client.fetch_blob(ref, layer, dest, progress=added.append)
    assert dest.read_bytes() == whole
    assert sum(added) == layer.size - 12345


def test_token_that_goes_stale_while_cached_is_refreshed(registry_token, tmp_path):
    pushed = registry_token.push("busybox", "hpcbox/stale", "latest")
    server = registry_token.token_server
    # advertised for 300 s, refused by the registry after 10 s: time enough for the first resolve
    # on a loaded machine (had the token gone stale during it, the refresh below would not be seen)
    server.issue_expired(1, accepted_for=10)
    with make_client(registry_token, tmp_path) as client:
        ref = ImageReference.parse(pushed.ref)
        assert client.resolve(ref).reference.digest == pushed.digest
        stale = server.issued[-1]
        assert stale["exp"] < time.time(), "the first resolve already needed a fresh token"
        # wait until the registry refuses it, computed from the token (a wait, not a timed assertion)
        time.sleep(max(0.0, stale["exp"] + REGISTRY_LEEWAY_S + 1.5 - time.time()))
        before = len(server.issued)
        resolved = client.resolve(ref)  # sends the cached token, gets 401 invalid_token, refreshes
        client.fetch_blob(ref, resolved.layers[0], tmp_path / "layer")
    assert resolved.reference.digest == pushed.digest
    assert len(server.issued) > before
    assert server.issued[-1]["exp"] > stale["exp"] + 60
    assert "invalid token" in registry_token.log_path.read_text()


def test_lowered_ttl_makes_the_client_fetch_new_tokens(registry_token, tmp_path):
    pushed = registry_token.push("busybox", "hpcbox/short-ttl", "latest")
    server = registry_token.token_server
    server.ttl = 2
    try:
        with make_client(registry_token, tmp_path) as client:
            ref = ImageReference.parse(pushed.ref)
            client.resolve(ref)
            time.sleep(2 + 1.5)  # past expires_in (a wait, not a timed assertion)
            before = len(server.issued)
            assert client.resolve(ref).reference.digest == pushed.digest
    finally:
        server.ttl = 300
    assert len(server.issued) > before


@pytest.mark.parametrize("fixture", ["registry_tls_basic", "registry_token"])
def test_wrong_password_is_an_authentication_error(fixture, request, tmp_path):
    registry = request.getfixturevalue(fixture)
    pushed = registry.push("busybox", "hpcbox/wrong-password", "latest")
    with make_client(registry, tmp_path, password="not-the-password") as client:
        with pytest.raises(AuthenticationError) as error:
            client.resolve(ImageReference.parse(pushed.ref))
        one_line(error.value)
        with pytest.raises(AuthenticationError):
            client.login(registry.host, registry.username, "not-the-password")
        client.login(registry.host, registry.username, registry.password)


def test_repository_outside_the_grant_is_an_authorization_error(registry_token, tmp_path):
    pushed = registry_token.push("busybox", "private/not-yours", "latest")
    with make_client(registry_token, tmp_path) as client, pytest.raises(AuthorizationError) as error:
        client.resolve(ImageReference.parse(pushed.ref))
    assert "private/not-yours" in one_line(error.value)
    assert registry_token.token_server.issued[-1]["access"][0]["actions"] == []


def test_unknown_tag_is_not_found(registry_http, tmp_path):
    registry_http.push("busybox", "hpcbox/known", "latest")
    with make_client(registry_http, tmp_path) as client, pytest.raises(NotFoundError):
        client.resolve(ImageReference.parse(f"{registry_http.host}/hpcbox/known:no-such-tag"))


def test_unreachable_registry_is_a_connection_error(tmp_path):
    with refused_port() as port, RegistryClient(RegistryConfig(max_retries=0, timeout=5)) as client:
        host = f"127.0.0.1:{port}"  # nothing listens there, and nothing can while it is held
        with pytest.raises(RegistryConnectionError) as error:
            client.ping(host)
        assert re.search(rf"{re.escape(host)}\b", one_line(error.value)), one_line(error.value)
        with pytest.raises(RegistryConnectionError):
            client.resolve(ImageReference.parse(f"{host}/hpcbox/nothing:latest"))


def test_tls_without_the_ca_is_refused(registry_tls_basic, tmp_path):
    pushed = registry_tls_basic.push("busybox", "hpcbox/untrusted", "latest")
    store = CredentialStore(path=str(tmp_path / "c.json"), docker_config=str(tmp_path / "d.json"))
    store.set(registry_tls_basic.host, registry_tls_basic.username, registry_tls_basic.password)
    client = RegistryClient(RegistryConfig(max_retries=0), credentials=store)
    with client, pytest.raises(TLSVerificationError) as error:
        client.resolve(ImageReference.parse(pushed.ref))
    assert isinstance(error.value, RegistryError)
    one_line(error.value)


def test_basic_registry_without_credentials_asks_for_a_login(registry_tls_basic, tmp_path):
    pushed = registry_tls_basic.push("busybox", "hpcbox/needs-login", "latest")
    config = RegistryConfig(ca_bundle=str(registry_tls_basic.ca_bundle))
    store = CredentialStore(path=str(tmp_path / "c.json"), docker_config=str(tmp_path / "d.json"))
    with RegistryClient(config, credentials=store) as client, pytest.raises(AuthenticationError) as error:
        client.resolve(ImageReference.parse(pushed.ref))
    assert "login" in one_line(error.value)


def test_anonymous_pull_of_a_private_repository_is_denied(registry_token, tmp_path):
    pushed = registry_token.push("busybox", "hpcbox/members-only", "latest")
    store = CredentialStore(path=str(tmp_path / "c.json"), docker_config=str(tmp_path / "d.json"))
    with (
        RegistryClient(RegistryConfig(), credentials=store) as client,
        pytest.raises(AuthorizationError) as error,
    ):
        client.resolve(ImageReference.parse(pushed.ref))
    assert "hpcbox/members-only" in one_line(error.value)
