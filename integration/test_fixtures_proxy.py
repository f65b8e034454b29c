"""The drop proxy forwards, cuts the first connection after N response bytes, then lets the rest pass."""

from __future__ import annotations

import hashlib
import http.client
import json

import pytest


def get(host, path, headers=None):
    connection = http.client.HTTPConnection(*host.split(":"), timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def layer(registry_http):
    pushed = registry_http.push("busybox", "hpcbox/proxied", "latest")
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    _, body = get(registry_http.host, f"/v2/hpcbox/proxied/manifests/{pushed.digest}", accept)
    return json.loads(body)["layers"][0]


def test_proxy_forwards_untouched_below_the_limit(registry_http, drop_proxy, layer):
    with drop_proxy(registry_http.host, layer["size"] * 2) as proxy:
        status, data = get(proxy.host, f"/v2/hpcbox/proxied/blobs/{layer['digest']}")
    assert status == 200
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
    assert proxy.drops_done == 0


def test_proxy_cuts_the_first_connection_then_passes(registry_http, drop_proxy, layer):
    path = f"/v2/hpcbox/proxied/blobs/{layer['digest']}"
    with drop_proxy(registry_http.host, 100_000) as proxy:
        with pytest.raises(http.client.IncompleteRead) as cut:
            get(proxy.host, path)
        assert 0 < len(cut.value.partial) < 100_000  # the response head took the rest
        status, rest = get(proxy.host, path, {"Range": f"bytes={len(cut.value.partial)}-"})
        assert status == 206
        assert proxy.drops_done == 1
        assert "Range: bytes=" in proxy.request_text()[1]
    data = cut.value.partial + rest
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
