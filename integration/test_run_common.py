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


# The engines every `hpcbox run` test runs under. "runc/runc" is the runc engine delegating to an
# installed runc (--runtime runc), for the tests that also check delegation.
RUN_ENGINES = ("runc", "ptrace", "preload")
RUN_ENGINES_AND_RUNTIMES = ("runc", "runc/runc", "ptrace", "preload")

# What an engine documents as impossible, with words of the clear error it gives instead (the test
# then asserts that error, exit status 125). Features: "static" (a statically linked program: the
# busybox image), "root" (uid 0 emulation good enough for dpkg/apt), "net-none" (--net=none needs a
# network namespace), "hostname" (--hostname needs a UTS namespace or emulation).
IMPOSSIBLE = {
    "ptrace": {"net-none": "network namespace"},
    "preload": {"net-none": "network namespace"},  # static programs: handed to the ptrace tracer
}


def impossible(engine: str, feature: str) -> str:
    """The words of the clear error *engine* gives for *feature*, or '' when it must work."""
    return IMPOSSIBLE.get(engine.partition("/")[0], {}).get(feature, "")


_availability: dict = {}


def engine_args(run_store: RunStore, engine: str) -> List[str]:
    """`hpcbox run` options selecting *engine* ("name" or "name/runtime"); skips the test when
    `hpcbox info` says the engine cannot work here, with its reason."""
    name, _, runtime = engine.partition("/")
    if runtime == "runc" and not runc_installed():
        pytest.skip("runc is not installed")
    if not _availability:
        info = json.loads(ok(run_store("info", "--json")).stdout)
        _availability.update({n: (e["available"], e["reason"]) for n, e in info["engines"].items()})
    available, reason = _availability.get(name, (False, "not listed by hpcbox info"))
    if not available:
        pytest.skip(f"engine {name} is not available here: {reason}")
    return ["--engine", name] + (["--runtime", runtime] if runtime else [])


def assert_impossible(proc, engine: str, feature: str) -> None:
    """*proc* failed the way *engine* documents for *feature*: status 125 and one clear line."""
    words = impossible(engine, feature)
    assert proc.returncode == 125, (proc.returncode, proc.stdout, proc.stderr)
    assert words in proc.stderr, proc.stderr
