import time

import pytest
from hpcbox_registry_fake import make_layer

from hpcbox_registry import (
    AuthenticationError,
    AuthorizationError,
    CredentialStore,
    ImageReference,
)
from hpcbox_registry.auth import parse_challenges, scope_for_url

LAYER = make_layer({"a": b"a"})


def test_parse_bearer_challenge():
    [c] = parse_challenges(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:team/app:pull,push",error="insufficient_scope"'
    )
    assert c.scheme == "bearer"
    assert c.realm == "https://auth.example/token"
    assert c.service == "registry.example"
    assert c.scope == "repository:team/app:pull,push"
    assert c.error == "insufficient_scope"


def test_parse_several_challenges_and_escapes():
    cs = parse_challenges('Basic realm="a \\"quoted\\" realm", Bearer realm="https://t/x", service=svc')
    assert [c.scheme for c in cs] == ["basic", "bearer"]
    assert cs[0].realm == 'a "quoted" realm'
    assert cs[1].service == "svc"
    assert parse_challenges("") == [] and parse_challenges(None) == []


def test_scope_for_api_urls():
    assert scope_for_url("https://r/v2/library/alpine/manifests/latest") == "repository:library/alpine:pull"
    assert scope_for_url("https://r/v2/a/b/c/blobs/sha256:00") == "repository:a/b/c:pull"
    assert scope_for_url("https://r/v2/app/tags/list?n=2") == "repository:app:pull"
    assert scope_for_url("https://r/v2/") is None
    assert scope_for_url("https://r/v2/_catalog") == "registry:catalog:*"


@pytest.fixture
def bearer(registry):
    registry.auth = "bearer"
    registry.users = {"alice": "secret"}
    registry.access = {None: {"public"}, "alice": {"private"}}
    registry.add_image("public", "latest", [LAYER])
    registry.add_image("private", "latest", [LAYER])
    return registry


def _store(tmp_path, registry, user="alice", password="secret"):
    store = CredentialStore(path=tmp_path / "creds.json", docker_config=None)
    store.set(registry.host, user, password)
    return store


def test_anonymous_token_flow_and_token_reuse(bearer, client):
    ref = ImageReference.parse(f"{bearer.host}/public")
    client.resolve(ref)
    client.get_manifest(ref)
    tokens = bearer.seen("/token")
    assert len(tokens) == 1  # one token for repository:public:pull, reused for config and manifests
    assert tokens[0].query["scope"] == ["repository:public:pull"]
    assert tokens[0].query["service"] == ["fake-registry"]
    assert "Authorization" not in tokens[0].headers
    assert all(
        s.headers.get("Authorization", "").startswith("Bearer ") for s in bearer.seen("/v2/public")[1:]
    )


def test_token_with_credentials(bearer, make_client, tmp_path):
    client = make_client(credentials=_store(tmp_path, bearer))
    client.resolve(ImageReference.parse(f"{bearer.host}/private"))
    token_req = bearer.seen("/token")[0]
    assert token_req.headers["Authorization"].startswith("Basic ")
    assert token_req.query["account"] == ["alice"]


def test_anonymous_access_to_private_repository_is_denied(bearer, client):
    with pytest.raises(AuthorizationError) as err:
        client.get_manifest(ImageReference.parse(f"{bearer.host}/private"))
    assert "anonymous" in str(err.value) and "log in" in str(err.value)


def test_insufficient_scope_is_an_authorization_error(bearer, make_client, tmp_path):
    bearer.access = {None: set(), "alice": {"public"}}
    client = make_client(credentials=_store(tmp_path, bearer))
    with pytest.raises(AuthorizationError) as err:
        client.get_manifest(ImageReference.parse(f"{bearer.host}/private"))
    assert "insufficient_scope" in str(err.value)
    assert err.value.code == "insufficient_scope"


def test_wrong_password_is_an_authentication_error(bearer, make_client, tmp_path):
    client = make_client(credentials=_store(tmp_path, bearer, password="wrong"))
    with pytest.raises(AuthenticationError) as err:
        client.get_manifest(ImageReference.parse(f"{bearer.host}/private"))
    assert "alice" in str(err.value) and "wrong" not in str(err.value)


def test_refresh_on_401_when_the_token_was_revoked(bearer, client):
    ref = ImageReference.parse(f"{bearer.host}/public")
    client.get_manifest(ref)
    bearer.revoke_tokens()
    client.get_manifest(ref)
    assert len(bearer.seen("/token")) == 2


def test_expired_token_is_fetched_again_before_use(bearer, client, monkeypatch):
    bearer.expires_in = 60
    ref = ImageReference.parse(f"{bearer.host}/public")
    client.get_manifest(ref)
    client.get_manifest(ref)
    assert len(bearer.seen("/token")) == 1
    later = time.monotonic() + 61
    monkeypatch.setattr("hpcbox_registry.auth.time.monotonic", lambda: later)
    before = len(bearer.seen("/v2/public/manifests"))
    client.get_manifest(ref)
    assert len(bearer.seen("/token")) == 2
    # fetched before the request, not after a refused one
    assert len(bearer.seen("/v2/public/manifests")) == before + 1


def test_token_without_expires_in_lives_60_seconds(bearer, client, monkeypatch):
    bearer.expires_in = None
    ref = ImageReference.parse(f"{bearer.host}/public")
    client.get_manifest(ref)
    now = time.monotonic()
    monkeypatch.setattr("hpcbox_registry.auth.time.monotonic", lambda: now + 40)
    client.get_manifest(ref)
    assert len(bearer.seen("/token")) == 1
    monkeypatch.setattr("hpcbox_registry.auth.time.monotonic", lambda: now + 70)
    client.get_manifest(ref)
    assert len(bearer.seen("/token")) == 2


def test_login_with_bearer_checks_the_password(bearer, client):
    with pytest.raises(AuthenticationError):
        client.login(bearer.host, "alice", "nope")
    client.login(bearer.host, "alice", "secret")
    client.get_manifest(ImageReference.parse(f"{bearer.host}/private"))


@pytest.fixture
def basic(registry):
    registry.auth = "basic"
    registry.users = {"bob": "pw"}
    registry.access = {"bob": {"app"}}
    registry.add_image("app", "latest", [LAYER])
    return registry


def test_basic_auth_with_stored_credentials(basic, make_client, tmp_path):
    client = make_client(credentials=_store(tmp_path, basic, "bob", "pw"))
    client.resolve(ImageReference.parse(f"{basic.host}/app"))
    assert basic.seen("/token") == []
    sent = [s.headers.get("Authorization", "") for s in basic.seen("/v2/app")]
    assert sent[-1].startswith("Basic ")
    # after the first challenge, Basic is sent straight away
    assert sum(1 for h in sent if not h) == 1


def test_basic_auth_without_credentials_asks_to_log_in(basic, client):
    with pytest.raises(AuthenticationError) as err:
        client.get_manifest(ImageReference.parse(f"{basic.host}/app"))
    assert "login" in str(err.value)


def test_basic_login(basic, client):
    with pytest.raises(AuthenticationError):
        client.login(basic.host, "bob", "bad")
    client.login(basic.host, "bob", "pw")
    assert client.get_manifest(ImageReference.parse(f"{basic.host}/app")).media_type
