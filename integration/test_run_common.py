"""Helpers for the test_run_* integration tests: a store with the test images under short names.

(No tests here.) ``run_store`` pulls ``busybox`` and ``debian12`` once per session from the loopback
registry and tags them ``busybox`` and ``debian``; ``shared_debian`` is one Debian container that
read-only tests share.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import List

import pytest
from test_cli_common import hpcbox, ok


class RunStore:
    def __init__(self, home: Path):
        self.home = home

    def __call__(self, *args: str, **kwargs):
        return hpcbox(self.home, *args, **kwargs)

    def ids(self) -> List[str]:
        return [c["id"] for c in json.loads(ok(self("ps", "--json")).stdout)]

    def create(self, image: str = "debian", name: str = "") -> str:
        extra = ["--name", name] if name else []
        return ok(self("create", *extra, image)).stdout.strip()


def _seed(tmp_path_factory, registry_http) -> RunStore:
    home = tmp_path_factory.mktemp("run-home") / "home"
    store = RunStore(home)
    for image, short in (("busybox", "busybox"), ("debian12", "debian")):
        pushed = registry_http.push(image, f"hpcbox/run-{image}", "1")
        ok(store("pull", "-q", pushed.ref))
        ok(store("tag", pushed.ref, short))
    return store


@pytest.fixture(scope="session")
def run_store(tmp_path_factory, registry_http) -> RunStore:
    return _seed(tmp_path_factory, registry_http)


@pytest.fixture(scope="session")
def shared_debian(run_store) -> str:
    """The name of a Debian 12 container that tests only read from."""
    run_store.create("debian", "shared-debian")
    return "shared-debian"


def runc_installed() -> bool:
    return bool(shutil.which("runc", path="/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"))
