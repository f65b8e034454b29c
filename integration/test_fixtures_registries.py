"""The registry fixtures: each answers with its auth scheme, stores pushed images, enforces its ACL."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hpcbox_testing import images

MANIFEST_ACCEPT = ", ".join(
    [
        images.OCI_MANIFEST,
        images.OCI_INDEX,
        images.DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def http(registry, path, headers=None, method="GET"):
    """(status, headers, body) of a request to the registry, HTTP errors included."""
    request = urllib.request.Request(registry.url + path, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=registry.ssl_context()) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def basic(username, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def token_for(registry, scope, credentials=None):
    query = urllib.parse.urlencode({"service": registry.token_server.service, "scope": scope})
    request = urllib.request.Request(f"{registry.token_server.url}?{query}", headers=credentials or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def skopeo_inspect_raw(registry, ref, creds=None):
    command = ["skopeo", "inspect", "--raw", f"--tls-verify={'true' if registry.ca_bundle else 'false'}"]
    if registry.ca_bundle:
        command.append(f"--cert-dir={registry.ca_bundle.parent}")
    if creds:
        command.append(f"--creds={creds}")
    result = subprocess.run([*command, f"docker://{ref}"], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


# -- each registry answers -------------------------------------------------------------------------
def test_http_registry_answers_anonymously(registry_http):
    status, headers, _ = http(registry_http, "/v2/")
    assert status == 200
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert registry_http.url == f"http://{registry_http.host}"
    assert registry_http.username is None and registry_http.ca_bundle is None


def test_tls_registry_wants_basic_credentials(registry_tls_basic):
    reg = registry_tls_basic
    assert reg.url.startswith("https://127.0.0.1:")
    status, headers, _ = http(reg, "/v2/")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic ")
    assert http(reg, "/v2/", basic(reg.username, reg.password))[0] == 200
    assert http(reg, "/v2/", basic(reg.username, reg.password + "x"))[0] == 401


def test_tls_registry_certificate_needs_the_fixture_ca(registry_tls_basic):
    with pytest.raises(urllib.error.URLError) as error:
        urllib.request.urlopen(
            registry_tls_basic.url + "/v2/", timeout=10, context=ssl.create_default_context()
        )
    assert isinstance(error.value.reason, ssl.SSLCertVerificationError)


def test_token_registry_challenges_like_docker_hub(registry_token):
    status, headers, _ = http(registry_token, "/v2/")
    assert status == 401
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{registry_token.token_server.url}"' in challenge
    assert f'service="{registry_token.token_server.service}"' in challenge


def test_registry_log_is_captured(registry_http):
    http(registry_http, "/v2/_catalog")
    assert "/v2/_catalog" in registry_http.log_path.read_text()


# -- pushes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["http", "tls_basic", "token"])
def test_pushed_image_is_seen_by_skopeo(name, request):
    reg = request.getfixturevalue(f"registry_{name}")
    pushed = reg.push("busybox", "hpcbox/fixture-busybox", "v1")
    assert pushed.ref == f"{reg.host}/hpcbox/fixture-busybox:v1"
    assert pushed.media_type == images.OCI_MANIFEST
    creds = f"{reg.username}:{reg.password}" if reg.username else None
    raw = skopeo_inspect_raw(reg, pushed.ref, creds)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == pushed.digest
    layer = json.loads(raw)["layers"][0]
    data = reg.blob_path(layer["digest"]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]


def test_pushed_multiarch_is_an_index(registry_http):
    pushed = registry_http.push("multiarch", "hpcbox/multi", "latest")
    assert pushed.media_type == images.OCI_INDEX
    status, _, body = http(registry_http, "/v2/hpcbox/multi/manifests/latest", {"Accept": MANIFEST_ACCEPT})
    assert status == 200
    assert "sha256:" + hashlib.sha256(body).hexdigest() == pushed.digest
    archs = sorted(m["platform"]["architecture"] for m in json.loads(body)["manifests"])
    assert archs == ["amd64", "arm64"]
    for manifest in json.loads(body)["manifests"]:  # the platform manifests were pushed too (--all)
        assert (
            http(
                registry_http, f"/v2/hpcbox/multi/manifests/{manifest['digest']}", {"Accept": MANIFEST_ACCEPT}
            )[0]
            == 200
        )


def test_pushed_busybox_docker_has_docker_media_types(registry_http, test_images):
    pushed = registry_http.push("busybox-docker", "hpcbox/docker", "latest")
    assert pushed.media_type == images.DOCKER_MANIFEST
    _, headers, body = http(registry_http, "/v2/hpcbox/docker/manifests/latest", {"Accept": MANIFEST_ACCEPT})
    assert headers["Content-Type"] == images.DOCKER_MANIFEST
    manifest = json.loads(body)
    assert manifest["layers"][0]["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    # the cached busybox-docker layout holds the very same manifest
    assert images.top_descriptor(test_images.layout("busybox-docker"))["digest"] == pushed.digest


def test_pushed_zstd_keeps_its_zstd_layer(registry_http):
    registry_http.push("zstd", "hpcbox/zstd", "latest")
    _, _, body = http(registry_http, "/v2/hpcbox/zstd/manifests/latest", {"Accept": MANIFEST_ACCEPT})
    layer = json.loads(body)["layers"][0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert registry_http.blob_path(layer["digest"]).read_bytes()[:4] == b"\x28\xb5\x2f\xfd"


def test_deletes_are_enabled(registry_http):
    pushed = registry_http.push("busybox", "hpcbox/deleteme", "latest")
    assert http(registry_http, f"/v2/hpcbox/deleteme/manifests/{pushed.digest}", method="DELETE")[0] == 202
    assert http(registry_http, "/v2/hpcbox/deleteme/manifests/latest", {"Accept": MANIFEST_ACCEPT})[0] == 404


# -- the token server and its ACL ------------------------------------------------------------------
def test_token_grants_inside_scope_and_registry_accepts_it(registry_token):
    reg = registry_token
    pushed = reg.push("busybox", "hpcbox/granted", "latest")
    answer = token_for(reg, "repository:hpcbox/granted:pull", basic(reg.username, reg.password))
    claims = reg.token_server.issued[-1]
    assert claims["access"] == [{"type": "repository", "name": "hpcbox/granted", "actions": ["pull"]}]
    assert claims["aud"] == reg.token_server.service and claims["sub"] == reg.username
    assert answer["expires_in"] == reg.token_server.ttl
    headers = {"Authorization": f"Bearer {answer['token']}", "Accept": MANIFEST_ACCEPT}
    status, _, body = http(reg, "/v2/hpcbox/granted/manifests/latest", headers)
    assert status == 200
    assert "sha256:" + hashlib.sha256(body).hexdigest() == pushed.digest


def test_token_registry_refuses_a_repository_outside_the_grant(registry_token):
    reg = registry_token
    reg.push("busybox", "private/secret", "latest")
    answer = token_for(reg, "repository:private/secret:pull", basic(reg.username, reg.password))
    assert reg.token_server.issued[-1]["access"][0]["actions"] == []
    status, headers, _ = http(
        reg, "/v2/private/secret/manifests/latest", {"Authorization": f"Bearer {answer['token']}"}
    )
    assert status == 401
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]


def test_token_for_one_repository_does_not_open_another(registry_token):
    reg = registry_token
    reg.push("busybox", "hpcbox/one", "latest")
    reg.push("busybox", "hpcbox/other", "latest")
    answer = token_for(reg, "repository:hpcbox/one:pull", basic(reg.username, reg.password))
    status, headers, _ = http(
        reg, "/v2/hpcbox/other/manifests/latest", {"Authorization": f"Bearer {answer['token']}"}
    )
    assert status == 401
    assert "insufficient_scope" in headers["WWW-Authenticate"]


def test_anonymous_token_only_for_public_repositories(registry_token):
    reg = registry_token
    reg.push("busybox", "public/busybox", "latest")
    answer = token_for(reg, "repository:public/busybox:pull,push")
    assert reg.token_server.issued[-1]["access"][0]["actions"] == ["pull"]
    assert reg.token_server.issued[-1]["sub"] == ""
    headers = {"Authorization": f"Bearer {answer['token']}", "Accept": MANIFEST_ACCEPT}
    assert http(reg, "/v2/public/busybox/manifests/latest", headers)[0] == 200
    token_for(reg, "repository:hpcbox/granted:pull")
    assert reg.token_server.issued[-1]["access"][0]["actions"] == []


def test_token_server_refuses_a_wrong_password(registry_token):
    reg = registry_token
    with pytest.raises(urllib.error.HTTPError) as error:
        token_for(reg, "repository:hpcbox/granted:pull", basic(reg.username, "wrong"))
    assert error.value.code == 401


def test_grant_opens_a_repository(registry_token):
    reg = registry_token
    reg.push("busybox", "team/opened", "latest")
    reg.token_server.grant(reg.username, "team/*", ["pull"])
    answer = token_for(reg, "repository:team/opened:pull,push", basic(reg.username, reg.password))
    assert reg.token_server.issued[-1]["access"][0]["actions"] == ["pull"]
    headers = {"Authorization": f"Bearer {answer['token']}", "Accept": MANIFEST_ACCEPT}
    assert http(reg, "/v2/team/opened/manifests/latest", headers)[0] == 200


def test_stale_token_is_refused_by_the_registry(registry_token):
    reg = registry_token
    reg.push("busybox", "public/stale", "latest")
    reg.token_server.issue_expired(1)
    stale = token_for(reg, "repository:public/stale:pull")
    assert stale["expires_in"] == reg.token_server.ttl  # the client cannot know it is stale
    status, headers, _ = http(
        reg, "/v2/public/stale/manifests/latest", {"Authorization": f"Bearer {stale['token']}"}
    )
    assert status == 401
    assert "invalid_token" in headers["WWW-Authenticate"]
    fresh = token_for(reg, "repository:public/stale:pull")
    headers = {"Authorization": f"Bearer {fresh['token']}", "Accept": MANIFEST_ACCEPT}
    assert http(reg, "/v2/public/stale/manifests/latest", headers)[0] == 200


def test_clear_stale_forgets_pending_stale_tokens(registry_token):
    reg = registry_token
    reg.push("busybox", "public/cleared", "latest")
    reg.token_server.issue_expired(3)
    reg.token_server.clear_stale()
    answer = token_for(reg, "repository:public/cleared:pull")
    headers = {"Authorization": f"Bearer {answer['token']}", "Accept": MANIFEST_ACCEPT}
    assert http(reg, "/v2/public/cleared/manifests/latest", headers)[0] == 200
