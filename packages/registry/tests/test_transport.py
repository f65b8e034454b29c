import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import threading
from http.server import ThreadingHTTPServer

import pytest
import requests
from hpcbox_registry_fake import FakeRegistry, _Handler, make_layer

from hpcbox_registry import (
    CredentialStore,
    Descriptor,
    ImageReference,
    InsecureRegistryError,
    RateLimitedError,
    RegistryConnectionError,
    RegistryServerError,
    TLSVerificationError,
)
from hpcbox_registry.transport import http_allowed, is_loopback
from hpcbox_registry.transport.session import retry_after_seconds

LAYER = make_layer({"f": os.urandom(2000)})


def test_back_off_honours_retry_after_on_429_and_503(registry, client):
    img = registry.add_image("app", "latest", [LAYER])
    registry.can("/manifests/", 429, {"Retry-After": "7"})
    registry.can("/manifests/", 503, {"Retry-After": "2"})
    registry.can("/manifests/", 502)
    assert client.get_manifest(ImageReference.parse(f"{registry.host}/app")).digest == img["digest"]
    assert client.sleeps[:2] == [7.0, 2.0]
    assert len(client.sleeps) == 3
    assert 0.5 * 4 <= client.sleeps[2] <= 0.5 * 4 * 1.25  # third retry: factor * 2**2 plus jitter


def test_exponential_back_off_without_retry_after(registry, make_client):
    client = make_client(max_retries=4, backoff_factor=1.0, max_backoff=5.0)
    registry.add_image("app", "latest", [LAYER])
    registry.can("/manifests/", 500, times=4)
    client.get_manifest(ImageReference.parse(f"{registry.host}/app"))
    assert [int(s) for s in client.sleeps] == [1, 2, 4, 5]


def test_retries_are_bounded(registry, client):
    registry.add_image("app", "latest", [LAYER])
    registry.can("/manifests/", 503, times=10)
    with pytest.raises(RegistryServerError) as err:
        client.get_manifest(ImageReference.parse(f"{registry.host}/app"))
    assert "503" in str(err.value)
    assert len(client.sleeps) == 3  # max_retries


def test_rate_limited_after_the_retries(registry, client):
    registry.can("/manifests/", 429, times=10)
    with pytest.raises(RateLimitedError):
        client.get_manifest(ImageReference.parse(f"{registry.host}/app"))


def test_retry_after_beyond_the_bound_fails_at_once(registry, make_client):
    client = make_client(max_backoff=30)
    registry.can("/manifests/", 429, {"Retry-After": "3600"})
    with pytest.raises(RateLimitedError) as err:
        client.get_manifest(ImageReference.parse(f"{registry.host}/app"))
    assert client.sleeps == []
    assert "3600" in str(err.value)


def test_retry_after_formats():
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_blob_redirect_to_another_host_carries_no_authorization(registry, storage, make_client, tmp_path):
    registry.auth = "basic"
    registry.users = {"bob": "pw"}
    registry.access = {"bob": {"app"}}
    data = os.urandom(4096)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar", **registry.add_blob(data))
    storage.add_blob(data)
    registry.blob_redirect = storage.url
    store = CredentialStore(path=tmp_path / "c.json", docker_config=None)
    store.set(registry.host, "bob", "pw")
    client = make_client(credentials=store)
    client.fetch_blob(ImageReference.parse(f"{registry.host}/app"), desc, tmp_path / "blob")
    assert (tmp_path / "blob").read_bytes() == data
    assert registry.seen("/blobs/")[-1].headers["Authorization"].startswith("Basic ")
    [hop] = storage.seen("/blobs/")
    assert "Authorization" not in hop.headers
    assert hop.query == {"X-Signature": ["abc"]}


def test_same_host_redirect_keeps_authorization(registry, make_client, tmp_path):
    registry.auth = "basic"
    registry.users = {"bob": "pw"}
    registry.access = {"bob": {"app"}}
    data = b"same host"
    desc = Descriptor("application/octet-stream", **registry.add_blob(data))
    registry.can("/v2/app/blobs/", 307, {"Location": f"/v2/app/blobs/{desc.digest}?again=1"})
    store = CredentialStore(path=tmp_path / "c.json", docker_config=None)
    store.set(registry.host, "bob", "pw")
    make_client(credentials=store).fetch_blob(
        ImageReference.parse(f"{registry.host}/app"), desc, tmp_path / "b"
    )
    assert registry.seen("/blobs/")[-1].headers["Authorization"].startswith("Basic ")


def test_loopback_rule():
    for host in (
        "127.0.0.1",
        "127.0.0.1:5000",
        "127.9.9.9:80",
        "localhost",
        "localhost:5000",
        "[::1]:5000",
        "::1",
    ):
        assert is_loopback(host), host
        assert http_allowed(host)
    for host in ("registry.example", "10.0.0.1:5000", "128.0.0.1", "localhost.example.org"):
        assert not is_loopback(host), host
        assert not http_allowed(host)
    assert http_allowed("registry.example:5000", ["registry.example:5000"])
    assert http_allowed("registry.example:5000", ["http://registry.example"])
    assert not http_allowed("registry.example:5001", ["other.example:5001"])
    assert http_allowed("10.1.2.3:5000", ["10.0.0.0/8"])
    assert not http_allowed("11.1.2.3:5000", ["10.0.0.0/8"])


class _PlainHttpAdapter(requests.adapters.HTTPAdapter):
    """Plays a registry that only speaks plain http: https gets a TLS protocol error."""

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.urls = []

    def send(self, request, **kwargs):
        self.urls.append(request.url)
        if request.url.startswith("https://"):
            raise requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number")
        request.url = request.url.replace("http://registry.example:5000", self.target)
        return super().send(request, **kwargs)


def _session_with(adapter):
    def factory():
        s = requests.Session()
        s.mount("https://", adapter)
        s.mount("http://", adapter)
        return s

    return factory


def test_plain_http_to_a_registry_not_listed_is_refused(registry, make_client):
    adapter = _PlainHttpAdapter(registry.url)
    client = make_client(session_factory=_session_with(adapter))
    with pytest.raises(InsecureRegistryError) as err:
        client.ping("registry.example:5000")
    assert "insecure_registries" in str(err.value)
    assert all(u.startswith("https://") for u in adapter.urls)
    assert registry.log == []


def test_listed_insecure_registry_falls_back_to_http(registry, make_client):
    img = registry.add_image("app", "latest", [LAYER])
    adapter = _PlainHttpAdapter(registry.url)
    client = make_client(
        session_factory=_session_with(adapter), insecure_registries=["registry.example:5000"]
    )
    assert client.get_manifest(ImageReference.parse("registry.example:5000/app")).digest == img["digest"]
    assert adapter.urls[0].startswith("https://") and adapter.urls[1].startswith("http://")
    client.get_manifest(ImageReference.parse("registry.example:5000/app"))
    assert adapter.urls[2].startswith("http://")  # the scheme is remembered


def test_loopback_registry_uses_http_without_being_listed(registry, client):
    registry.add_image("app", "latest", [LAYER])
    client.get_manifest(ImageReference.parse(f"{registry.host}/app"))
    assert client.transport.base_url(registry.host) == f"http://{registry.host}"


def test_a_plain_http_loopback_registry_costs_no_https_attempt(registry, client, monkeypatch):
    """The first request to a plain-http loopback registry goes out over http at once: no verifying
    TLS context (which loads every CA certificate of the system) for an https attempt that fails."""
    loaded = []
    real = ssl.SSLContext.load_verify_locations

    def load(self, *args, **kwargs):
        loaded.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", load)
    img = registry.add_image("app", "latest", [LAYER])
    assert client.get_manifest(ImageReference.parse(f"{registry.host}/app")).digest == img["digest"]
    assert client.transport.base_url(registry.host) == f"http://{registry.host}"
    assert loaded == []


def test_redirect_to_plain_http_on_another_host_is_refused(registry, make_client, tmp_path):
    data = b"blob"
    desc = Descriptor("application/octet-stream", **registry.add_blob(data))
    registry.can("/blobs/", 307, {"Location": "http://storage.example/blob"})
    with pytest.raises(InsecureRegistryError):
        make_client().fetch_blob(ImageReference.parse(f"{registry.host}/app"), desc, tmp_path / "b")


def test_connection_refused_is_a_connection_error_without_retries(client):
    with pytest.raises(RegistryConnectionError) as err:
        client.ping("127.0.0.1:9")
    assert "127.0.0.1:9" in str(err.value)
    assert "Connection refused" in str(err.value) and "ConnectionPool" not in str(err.value)
    assert client.sleeps == []


def test_a_registry_that_never_answers_times_out(make_client):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never answers
    try:
        client = make_client(timeout=0.3, max_retries=1)
        with pytest.raises(RegistryConnectionError) as err:
            client.ping(f"127.0.0.1:{silent.getsockname()[1]}")
        assert "did not answer within 0.3 s" in str(err.value)
        assert client.sleeps  # a timeout is retried (over https, then over http: loopback may be plain)
    finally:
        silent.close()


def test_requests_carry_the_user_agent(registry, make_client):
    client = make_client(user_agent="hpcbox-test/1")
    client.ping(registry.host)
    assert registry.log[-1].headers["User-Agent"] == "hpcbox-test/1"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def tls_registry(tls_files):
    cert, key = tls_files
    fake = FakeRegistry.__new__(FakeRegistry)
    plain = FakeRegistry("127.0.0.1")
    plain.close()
    fake.__dict__.update(plain.__dict__)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.fake = fake
    fake.server = server
    fake.host = f"127.0.0.1:{server.server_address[1]}"
    fake.url = f"https://{fake.host}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def test_tls_is_verified_by_default(tls_registry, client):
    with pytest.raises(TLSVerificationError) as err:
        client.ping(tls_registry.host)
    assert "ca_bundle" in str(err.value)


def test_tls_with_a_ca_bundle(tls_registry, tls_files, make_client):
    img = tls_registry.add_image("app", "latest", [LAYER])
    client = make_client(ca_bundle=str(tls_files[0]))
    assert client.ping(tls_registry.host) == f"https://{tls_registry.host}"
    assert client.get_manifest(ImageReference.parse(f"{tls_registry.host}/app")).digest == img["digest"]


def test_proxies_come_from_the_environment(registry, storage, make_client, monkeypatch):
    """``storage`` plays an http proxy: it receives absolute URLs for registry.example:5000."""
    storage.add_image("app", "latest", [LAYER])
    monkeypatch.setenv("HTTP_PROXY", storage.url)
    monkeypatch.setenv("HTTPS_PROXY", storage.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_client(insecure_registries=["registry.example:5000"], max_retries=0)
    client.get_manifest(ImageReference.parse("registry.example:5000/app"))
    assert storage.seen("/v2/app/manifests/latest")[-1].headers["Host"] == "registry.example:5000"
    assert registry.log == []


def test_ca_bundle_adds_to_the_default_cas(tls_files, make_client):
    client = make_client(ca_bundle=str(tls_files[0]))
    combined = client.transport._ca_file()
    text = pathlib.Path(combined).read_text()
    assert pathlib.Path(tls_files[0]).read_text().strip() in text
    default = requests.utils.DEFAULT_CA_BUNDLE_PATH
    if os.path.isfile(default):
        assert text.count("BEGIN CERTIFICATE") > 1
    client.close()
    assert not os.path.exists(combined)
