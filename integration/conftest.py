"""Session fixtures shared by hpcbox's integration tests (machinery in ``hpcbox_testing``).

- ``test_images``: ``test_images.layout(name) -> Path`` of a cached OCI layout (see hpcbox_testing.images).
- ``registry_http``: anonymous plain-HTTP docker-registry.
- ``registry_tls_basic``: HTTPS (``.ca_bundle``) with Basic auth (``.username``/``.password``).
- ``registry_token``: plain HTTP with Bearer tokens from ``.token_server``. ACL at start: ``.username`` may
  pull and push ``hpcbox/*`` and ``library/*``; everybody (anonymous too) may pull ``public/*``; no grant
  covers other repositories (e.g. ``private/*``), which only the fixture's internal pusher account
  reaches. Add grants with ``.token_server.grant(username_or_None, glob, actions)``.
  All three: ``.host``, ``.url``, ``.storage``, ``.blob_path(digest)``, ``.push(image, repo, tag)``.
  Blobs are shared by every repository of a registry: a test that corrupts one must restore it.
- ``drop_proxy``: ``with drop_proxy(target_host, drop_after_bytes[, drops=1]) as proxy:``.

When a test that uses a registry fails, the tail of each running registry's log joins its report.
"""

from __future__ import annotations

import contextlib

import pytest
from hpcbox_testing import registry as registry_module
from hpcbox_testing.images import TestImages
from hpcbox_testing.proxy import DropProxy

REGISTRY_FIXTURES = {"registry_http", "registry_tls_basic", "registry_token"}


@pytest.fixture(scope="session")
def test_images() -> TestImages:
    return TestImages()


def _registry(kind, tmp_path_factory, test_images):
    registry = registry_module.start_registry(kind, tmp_path_factory.mktemp(f"registry-{kind}"), test_images)
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def registry_http(tmp_path_factory, test_images):
    yield from _registry("http", tmp_path_factory, test_images)


@pytest.fixture(scope="session")
def registry_tls_basic(tmp_path_factory, test_images):
    yield from _registry("tls-basic", tmp_path_factory, test_images)


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory, test_images):
    yield from _registry("token", tmp_path_factory, test_images)


@pytest.fixture
def drop_proxy():
    """Factory: ``with drop_proxy("127.0.0.1:PORT", 100_000) as proxy: ... proxy.host ...``."""
    started = []

    @contextlib.contextmanager
    def make(target_host: str, drop_after_bytes: int, drops: int = 1):
        proxy = DropProxy(target_host, drop_after_bytes, drops).start()
        started.append(proxy)
        try:
            yield proxy
        finally:
            proxy.stop()

    yield make
    for proxy in started:
        proxy.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and REGISTRY_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        for registry in list(registry_module.RUNNING):
            report.sections.append((f"docker-registry {registry.kind} log (tail)", registry.log_tail()))
