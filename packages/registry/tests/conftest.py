import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hpcbox_registry_fake import FakeRegistry

from hpcbox_registry import RegistryClient, RegistryConfig

# Hypothesis times each example (200 ms) and the data generation: on a loaded CI machine either may
# take ten times longer than here, which fails a test for no fault of the code. Not timed, then.
settings.register_profile("hpcbox-untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hpcbox-untimed")


@pytest.fixture
def registry():
    fake = FakeRegistry("127.0.0.1")
    yield fake
    fake.close()


@pytest.fixture
def storage():
    """A second server on another loopback address, for redirects to another host."""
    fake = FakeRegistry("127.0.0.2")
    yield fake
    fake.close()


@pytest.fixture
def make_client():
    clients = []

    def make(credentials=None, **options):
        options.setdefault("timeout", 10.0)
        options.setdefault("max_retries", 3)
        client = RegistryClient(RegistryConfig(**options), credentials=credentials)
        client.sleeps = []
        client.transport.sleep = client.sleeps.append  # record the back-off instead of waiting
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch):
    """The fake registries are on loopback: a CI proxy setting must not capture their traffic."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
