"""Every kind of registry request is retried with back-off, whatever breaks on the way.

A fake transport (a ``requests`` adapter given through ``session_factory``) spoils the first
request of one kind in one way, then lets the requests through to the fake registry: the call
must succeed, have asked again, and have slept a back-off before it did.
"""

import io
import os

import pytest
import requests
import urllib3
from hpcbox_registry_fake import make_layer

from hpcbox_registry import CredentialStore, ImageReference, RegistryServerError

LAYER = make_layer({"f": os.urandom(3000)})


class FlakyAdapter(requests.adapters.HTTPAdapter):
    """Spoils the first ``times`` requests whose path contains ``part``; passes everything else.

    ``reset``: the connection drops before any reply; ``503``: the server fails; ``cut``: the
    reply's headers arrive but the body stops half-way; ``timeout``: the body stalls; ``short``:
    the body ends half-way without an error (no length was announced: the close ends it).
    """

    def __init__(self, part, mode, times=1):
        super().__init__()
        self.part, self.mode, self.left = part, mode, times
        self.spoiled = 0

    def send(self, request, stream=False, **kwargs):
        # only plain http: the client's first https probe of a loopback registry is not the request
        if self.left <= 0 or self.part not in request.path_url or not request.url.startswith("http:"):
            return super().send(request, stream=stream, **kwargs)
        self.left -= 1
        self.spoiled += 1
        if self.mode == "reset":
            raise requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
                request=request,
            )
        real = super().send(request, stream=True, **kwargs)
        body = real.raw.read(decode_content=False)
        real.close()
        headers = dict(real.headers)
        status = real.status_code
        if self.mode == "503":
            status, body = 503, b'{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}'
            headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        elif self.mode in ("cut", "timeout"):
            headers["Content-Length"] = str(len(body))
            body = body[: len(body) // 2]
        elif self.mode == "short":
            headers.pop("Content-Length", None)
            body = body[: len(body) // 2]
        fp = _Stalling(body) if self.mode == "timeout" else io.BytesIO(body)
        raw = urllib3.HTTPResponse(
            body=fp,
            headers=headers,
            status=status,
            preload_content=False,
            decode_content=False,
            enforce_content_length=True,
            request_method=request.method,
            request_url=request.url,
        )
        resp = self.build_response(request, raw)
        if not stream:
            resp.content  # what requests does for a non-streamed request: the failure shows here  # noqa: B018
        return resp


class _Stalling(io.BytesIO):
    """A body that times out once its bytes are read."""

    def read(self, *args):
        data = super().read(*args)
        if not data:
            raise urllib3.exceptions.ReadTimeoutError(None, "", "Read timed out.")
        return data

    def read1(self, *args):
        return self.read(*args)


def _client(make_client, adapter, **options):
    def session():
        sess = requests.Session()
        sess.mount("http://", adapter)
        sess.mount("https://", adapter)
        return sess

    return make_client(session_factory=session, **options)


def _image(registry):
    img = registry.add_image("app", "latest", [LAYER])
    registry.search_index.append({"name": "app", "description": "the app", "star_count": 3})
    return img


def _ref(registry):
    return ImageReference.parse(f"{registry.host}/app")


def _config_digest(registry, client):
    return client.resolve(_ref(registry)).config_descriptor.digest


# kind -> (the path part that marks its request, what to call, what must come back)
KINDS = {
    "ping": ("/v2/", lambda reg, c: c.ping(reg.host), lambda reg, got: got == reg.url),
    "manifest": ("/manifests/latest", lambda reg, c: c.get_manifest(_ref(reg)).raw, None),
    "config": ("/blobs/", lambda reg, c: c.resolve(_ref(reg)).config, None),
    "layer": ("/blobs/", None, None),
    "tags": ("/tags/list", lambda reg, c: c.list_tags(_ref(reg)), lambda reg, got: got == ["latest"]),
    "search": (
        "/v1/search",
        lambda reg, c: [r.name for r in c.search("app", registry=reg.host)],
        lambda reg, got: got == ["app"],
    ),
    "token": ("/token", lambda reg, c: c.get_manifest(_ref(reg)).raw, None),
    "login": ("/token", lambda reg, c: c.login(reg.host, "alice", "secret"), lambda reg, got: got is None),
}


@pytest.mark.parametrize("mode", ["reset", "503", "cut", "timeout"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_request_kind_is_retried_with_back_off(registry, make_client, tmp_path, kind, mode):
    img = _image(registry)
    part, call, check = KINDS[kind]
    if kind in ("token", "login"):
        registry.auth = "bearer"
        registry.users["alice"] = "secret"
        registry.access = {None: {"app"}, "alice": {"app"}}
    if kind in ("manifest", "token"):
        check = lambda reg, got: got == img["raw"]  # noqa: E731
    if kind == "config":
        # the config is the only blob fetched by resolve(); its expected bytes come from a clean client
        expected = make_client().resolve(_ref(registry)).config
        check = lambda reg, got: got == expected  # noqa: E731
    if kind == "layer":
        desc = make_client().resolve(_ref(registry)).layers[0]

        def call(reg, c):
            return open(c.fetch_blob(_ref(reg), desc, tmp_path / "layer"), "rb").read()

        def check(reg, got):
            return got == LAYER

    adapter = FlakyAdapter(part, mode)
    client = _client(make_client, adapter, credentials=CredentialStore(str(tmp_path / "auth.json")))
    got = call(registry, client)
    assert check(registry, got), got
    assert adapter.spoiled == 1 and adapter.left == 0
    assert len(client.sleeps) >= 1 and all(s > 0 for s in client.sleeps)  # waited before asking again


@pytest.mark.parametrize("kind", ["manifest", "tags", "search", "token"])
def test_a_json_reply_that_ends_early_without_an_error_is_asked_for_again(
    registry, make_client, tmp_path, kind
):
    test_every_request_kind_is_retried_with_back_off(registry, make_client, tmp_path, kind, "short")


@pytest.mark.parametrize("kind", ["tags", "search", "token", "manifest"])
def test_a_json_reply_that_never_parses_fails_after_the_retries_naming_it(registry, make_client, kind):
    _image(registry)
    part, call, _check = KINDS[kind]
    if kind == "token":
        registry.auth = "bearer"
        registry.access = {None: {"app"}}
    adapter = FlakyAdapter(part, "short", times=100)
    client = _client(make_client, adapter, max_retries=2)
    with pytest.raises(RegistryServerError) as err:
        call(registry, client)
    assert adapter.spoiled == 3
    assert len(client.sleeps) == 2
    assert "JSON" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["tags", "search", "token", "ping"])
def test_a_request_spoiled_every_time_fails_after_the_retries(registry, make_client, tmp_path, kind):
    _image(registry)
    part, call, _check = KINDS[kind]
    if kind == "token":
        registry.auth = "bearer"
        registry.access = {None: {"app"}}
    adapter = FlakyAdapter(part, "cut", times=100)
    client = _client(make_client, adapter, max_retries=2)
    with pytest.raises(Exception) as err:
        call(registry, client)
    assert adapter.spoiled == 3  # the first try and max_retries more
    assert len(client.sleeps) == 2
    text = str(err.value)
    assert "\n" not in text and "IncompleteRead(" not in text, text
