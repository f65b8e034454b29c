"""engines: discovery (module first, entry points as fallback) and the `auto` choice."""

from __future__ import annotations

import os
import sys
import types

import pytest

from hpcbox import engines
from hpcbox.errors import UsageError


class FakeEntryPoint:
    def __init__(self, name, target, value="pkg.mod:engine"):
        self.name, self._target, self.value = name, target, value

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def real_capabilities(name):
    """What the real engine of that name declares (fakes plan like it), none for other names."""
    try:
        module = __import__(f"hpcbox_engine_{name}")
    except ImportError:
        return frozenset()
    return getattr(getattr(module, "engine", None), "capabilities", frozenset())


class FakeEngine:
    def __init__(self, name, ok=True, reason="fine"):
        self.name, self.ok, self.reason = name, ok, reason
        self.capabilities = real_capabilities(name)

    def available(self, **kwargs):
        return self.ok, self.reason

    def run(self, bundle, **kwargs):
        return 0


def test_runc_engine_loads_from_its_module():
    import hpcbox_engine_runc

    assert engines.load("runc", entry_points=[]) is hpcbox_engine_runc.engine


def test_engine_packages_without_an_engine_object_explain_it(monkeypatch):
    bare = types.ModuleType("hpcbox_engine_ptrace")
    bare.__version__ = "0.0.1"  # a release of the package that predates its engine
    monkeypatch.setitem(sys.modules, "hpcbox_engine_ptrace", bare)
    engine = engines.load("ptrace", entry_points=[])
    ok, reason = engine.available()
    assert not ok and "hpcbox-engine-ptrace 0.0.1" in reason and "not built" in reason
    with pytest.raises(engines.EngineUnavailableError, match="engine ptrace is not available: "):
        engine.run("/nonexistent")


def test_ptrace_and_preload_engines_load_from_their_modules():
    for name in ("ptrace", "preload"):
        module = pytest.importorskip(f"hpcbox_engine_{name}")
        assert engines.load(name, entry_points=[]) is module.engine


def test_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "hpcbox_engine_preload", None)  # import fails
    ok, reason = engines.load("preload", entry_points=[]).available()
    assert not ok and "hpcbox-engine-preload is not installed" in reason


def test_entry_point_fallback_and_third_party_engines(monkeypatch):
    empty = types.ModuleType("hpcbox_engine_singularity")
    monkeypatch.setitem(sys.modules, "hpcbox_engine_singularity", empty)
    plugin = FakeEngine("singularity")
    other = FakeEngine("gvisor")
    eps = [FakeEntryPoint("singularity", plugin), FakeEntryPoint("gvisor", other)]
    assert engines.load("singularity", entry_points=eps) is plugin
    assert engines.load("gvisor", entry_points=eps) is other
    assert engines.names(eps) == ["runc", "ptrace", "preload", "singularity", "gvisor"]


def test_broken_entry_points_do_not_break_hpcbox():
    eps = [FakeEntryPoint("bad", RuntimeError("boom")), FakeEntryPoint("odd", object())]
    ok, reason = engines.load("bad", entry_points=eps).available()
    assert not ok and "fails to load (RuntimeError: boom)" in reason
    ok, reason = engines.load("odd", entry_points=eps).available()
    assert not ok and "not an engine" in reason
    ok, reason = engines.load("nothing", entry_points=eps).available()
    assert not ok and "no engine of that name" in reason


def test_check_never_raises_and_passes_the_runtime():
    class Exploding(FakeEngine):
        def available(self, **kwargs):
            raise OSError("no /proc")

    assert engines.check(Exploding("x")) == (False, "its availability check failed (OSError: no /proc)")
    seen = {}

    class Recording(FakeEngine):
        def available(self, **kwargs):
            seen.update(kwargs)
            return True, "ok"

    assert engines.check(Recording("runc"), runtime="crun") == (True, "ok")
    assert seen == {"runtime": "crun"}


@pytest.mark.parametrize("statuses, expected", [
    ({"runc": (True, ""), "preload": (True, ""), "ptrace": (True, "")}, "runc"),
    ({"runc": (False, ""), "preload": (True, ""), "ptrace": (True, "")}, "preload"),
    ({"runc": (False, ""), "preload": (False, ""), "ptrace": (True, "")}, "ptrace"),
    ({"runc": (False, ""), "preload": (False, ""), "ptrace": (False, ""), "singularity": (True, "")}, None),
])
def test_auto_order(statuses, expected):
    assert engines.auto_choice(statuses) == expected


def test_resolve():
    name, engine = engines.resolve("auto")
    assert name == "runc" and engine is engines.load("runc")
    assert engines.resolve("runc")[0] == "runc"
    with pytest.raises(UsageError, match=r"unknown engine 'docker'.*--engine auto"):
        engines.resolve("docker")


def test_auto_without_runc_says_why_each_failed(monkeypatch):
    def load(name, entry_points=None):
        return engines._Missing(name, f"{name} says no")

    monkeypatch.setattr(engines, "load", load)
    with pytest.raises(engines.EngineUnavailableError) as info:
        engines.resolve("auto")
    text = str(info.value)
    assert "no engine works here" in text
    for name in ("runc", "preload", "ptrace"):
        assert f"{name}: {name} says no" in text


def test_auto_falls_back_to_the_next_available(monkeypatch):
    table = {"runc": engines._Missing("runc", "no userns"), "preload": FakeEngine("preload", False, "static"),
             "ptrace": FakeEngine("ptrace")}
    monkeypatch.setattr(engines, "load", lambda name, entry_points=None: table[name])
    assert engines.resolve("auto") == ("ptrace", table["ptrace"])
    assert engines.fallbacks("runc") == [("ptrace", table["ptrace"])]
    assert engines.fallbacks("ptrace") == []


@pytest.fixture
def rootfs(tmp_path):
    import shutil as sh

    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    static = sh.which("busybox") or "/bin/busybox"
    if not os.path.exists(static):
        pytest.skip("busybox-static is not installed")
    sh.copy(static, root / "bin/busybox")
    sh.copy("/bin/ls", root / "usr/bin/ls")  # dynamically linked on Debian
    (root / "bin/sh").symlink_to("busybox")
    (root / "bin/abs-ls").symlink_to("/usr/bin/ls")  # absolute: resolved inside the rootfs
    (root / "bin/escape").symlink_to("../../../../../../bin/ls")  # '..' stops at the rootfs
    (root / "script").write_text("#!/usr/bin/ls -l\n")
    (root / "static-script").write_text("#!/bin/sh\necho\n")
    (root / "text").write_text("not a program\n")
    return root


@pytest.mark.parametrize("program, expected", [
    ("busybox", False),
    ("/bin/sh", False),
    ("ls", True),
    ("/bin/abs-ls", True),
    ("/script", True),
    ("/static-script", False),
    ("/text", None),
    ("/bin/escape", None),       # ../../ cannot reach the host's /bin/ls
    ("missing", None),
])
def test_is_dynamic(rootfs, program, expected):
    assert engines.is_dynamic(str(rootfs), program, "/usr/bin:/bin") is expected


def test_auto_skips_preload_for_static_programs(monkeypatch):
    table = {"preload": FakeEngine("preload"), "ptrace": FakeEngine("ptrace")}
    monkeypatch.setattr(engines, "load", lambda name, entry_points=None: table[name])
    assert [n for n, _ in engines.fallbacks("runc", dynamic=False)] == ["ptrace"]
    assert [n for n, _ in engines.fallbacks("runc", dynamic=True)] == ["preload", "ptrace"]
    assert [n for n, _ in engines.fallbacks("runc", dynamic=None)] == ["preload", "ptrace"]
