"""`hpcbox run` flow without real containers: argument parsing, config written, engine choice and errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest

from hpcbox import engines
from hpcbox.commands import run as run_cmd
from hpcbox.errors import HpcboxError
from hpcbox.main import build_parser


def real_capabilities(name):
    """What the real engine of that name declares (a fake plans like it)."""
    try:
        module = __import__(f"hpcbox_engine_{name}")
    except ImportError:
        return frozenset()
    return getattr(getattr(module, "engine", None), "capabilities", frozenset())


class FakeContainer:
    def __init__(self, directory: Path, settings=None, image_config=None):
        self.dir = directory
        self.rootfs = directory / "rootfs"
        self.rootfs.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "config.json"
        self.settings = dict(settings or {})
        self.image_config = image_config or {"config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}}
        self.uses = 0

    @contextlib.contextmanager
    def in_use(self):
        self.uses += 1
        yield


class FakeEngine:
    def __init__(self, name, statuses=(0,), ok=True, reason="works", error=None):
        self.name = name
        self.capabilities = real_capabilities(name)
        self.statuses = list(statuses)
        self.ok, self.reason, self.error = ok, reason, error
        self.calls = []

    def available(self, **kwargs):
        return self.ok, self.reason

    def run(self, config, bundle_dir=None, **kwargs):
        self.calls.append((config, bundle_dir))
        if self.error:
            raise self.error
        return self.statuses.pop(0)


@pytest.fixture
def fake_engines(monkeypatch):
    table = {}

    def load(name, entry_points=None):
        return table.get(name) or engines._Missing(name, f"{name} is not here")

    monkeypatch.setattr(engines, "load", load)
    return table


def parse(*argv):
    return build_parser().parse_args(["run", *argv])


def test_command_after_the_image_is_the_containers():
    args = parse("-it", "--rm", "-e", "A=1", "-v", "/x:/y:ro", "--net=none", "img",
                 "ls", "-l", "--color", "-e")
    assert args.target == "img" and args.command == ["ls", "-l", "--color", "-e"]
    assert args.tty and args.interactive and args.rm and args.net == "none"
    assert args.env == ["A=1"] and args.volume == ["/x:/y:ro"]
    assert parse("img").command == []


def test_config_is_written_and_handed_to_the_engine(tmp_path, fake_engines):
    fake_engines["runc"] = engine = FakeEngine("runc", statuses=[7])
    container = FakeContainer(tmp_path / "c")
    status = run_cmd._run(parse("--hostname", "h1", "--nosysdirs", "--containerauth", "x", "echo", "hi"),
                          container)
    assert status == 7 and container.uses == 1
    config, bundle_dir = engine.calls[0]
    assert bundle_dir == str(container.dir)
    assert json.loads(container.config_path.read_text()) == config
    assert config["process"]["args"] == ["echo", "hi"]
    assert config["hostname"] == "h1" and config["root"]["path"] == "rootfs"


def test_settings_from_setup_and_command_line_overrides(tmp_path, fake_engines):
    fake_engines["ptrace"] = ptrace = FakeEngine("ptrace")
    fake_engines["runc"] = runc = FakeEngine("runc")
    container = FakeContainer(tmp_path / "c", settings={"engine": "ptrace", "runtime": "runc",
                                                         "annotations": {"org.hpcbox.ptrace.seccomp": "on"}})
    assert run_cmd._run(parse("--nosysdirs", "x"), container) == 0
    config = ptrace.calls[0][0]
    assert config["annotations"]["org.hpcbox.ptrace.seccomp"] == "on"
    assert config["annotations"]["org.hpcbox.runc.runtime"] == "runc"
    assert run_cmd._run(parse("--engine", "runc", "--runtime", "builtin", "--nosysdirs", "x"), container) == 0
    assert runc.calls[0][0]["annotations"]["org.hpcbox.runc.runtime"] == "builtin"


def test_engine_that_cannot_start_reports_why(tmp_path, fake_engines):
    reason = "user namespaces are disabled: user.max_user_namespaces=0; ask the administrator"
    fake_engines["runc"] = FakeEngine("runc", statuses=[125], ok=False, reason=reason)
    with pytest.raises(engines.EngineUnavailableError) as info:
        run_cmd._run(parse("--engine", "runc", "--nosysdirs", "x"), FakeContainer(tmp_path / "c"))
    assert str(info.value) == f"engine runc is not available: {reason}"
    assert info.value.code == 125


def test_status_125_of_a_working_engine_is_the_containers(tmp_path, fake_engines):
    fake_engines["runc"] = FakeEngine("runc", statuses=[125])
    assert run_cmd._run(parse("--nosysdirs", "x"), FakeContainer(tmp_path / "c")) == 125


def test_auto_falls_back_when_runc_cannot_start(tmp_path, fake_engines):
    fake_engines["runc"] = FakeEngine("runc", statuses=[125], ok=False, reason="no userns")
    fake_engines["preload"] = FakeEngine("preload", ok=False, reason="static binary")
    fake_engines["ptrace"] = ptrace = FakeEngine("ptrace", statuses=[3])
    assert run_cmd._run(parse("--nosysdirs", "x"), FakeContainer(tmp_path / "c")) == 3
    assert len(ptrace.calls) == 1


def test_a_fallback_plans_from_scratch_for_its_own_capabilities(tmp_path, fake_engines, monkeypatch, capsys):
    """runc (scratch-tmpfs) gets the GPU scratch tmpfs; ptrace, tried next, gets a config planned anew
    without it (not runc's, edited), and the plan's warning is shown once."""
    import types

    from hpcbox import gpu

    scratches = []

    def apply(config, driver, chosen, *, bind_libraries, scratch, host_env=None):
        scratches.append(scratch)
        if scratch:
            config["mounts"].append({"destination": "/usr/local/nvidia", "type": "tmpfs", "source": "tmpfs"})
        return "the driver is old"

    monkeypatch.setattr(gpu, "discover", lambda: types.SimpleNamespace(version="1"))
    monkeypatch.setattr(gpu, "apply", apply)
    fake_engines["runc"] = runc = FakeEngine("runc", statuses=[125], ok=False, reason="no userns")
    fake_engines["preload"] = FakeEngine("preload", ok=False, reason="not here")
    fake_engines["ptrace"] = ptrace = FakeEngine("ptrace", statuses=[0])
    assert run_cmd._run(parse("--gpus", "all", "--nosysdirs", "x"), FakeContainer(tmp_path / "c")) == 0
    assert scratches == [True, False]
    first, second = runc.calls[0][0], ptrace.calls[0][0]
    assert first is not second
    assert [m["destination"] for m in first["mounts"] if m.get("type") == "tmpfs"] == ["/usr/local/nvidia"]
    assert not [m for m in second["mounts"] if m.get("type") == "tmpfs"]
    assert capsys.readouterr().err.count("the driver is old") == 1


def test_named_engine_missing(tmp_path, fake_engines):
    with pytest.raises(engines.EngineUnavailableError, match="engine preload is not available: preload is"):
        run_cmd._run(parse("--engine", "preload", "--nosysdirs", "x"), FakeContainer(tmp_path / "c"))


def test_engine_errors_become_one_line(tmp_path, fake_engines):
    import hpcbox_oci_bundle

    class EngineError(hpcbox_oci_bundle.EngineError):  # an engine's own error, on the contract's base
        pass

    fake_engines["runc"] = FakeEngine("runc", error=EngineError("bad bundle:\n  process.cwd is 'x'"))
    with pytest.raises(HpcboxError) as info:
        run_cmd._run(parse("--nosysdirs", "x"), FakeContainer(tmp_path / "c"))
    assert str(info.value).startswith("engine runc cannot run the container: bad bundle: process.cwd is 'x'")
    fake_engines["runc"] = FakeEngine("runc", error=KeyError("a bug"))
    with pytest.raises(KeyError):  # not an engine error: a bug, shown with HPCBOX_DEBUG=1
        run_cmd._run(parse("--nosysdirs", "x"), FakeContainer(tmp_path / "c"))


def test_cpuset_is_applied_before_the_engine_runs(tmp_path, fake_engines, monkeypatch):
    seen = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: seen.append((pid, set(cpus))))
    fake_engines["runc"] = FakeEngine("runc")
    run_cmd._run(parse("--cpuset-cpus", "0", "--nosysdirs", "x"), FakeContainer(tmp_path / "c"))
    assert seen == [(0, {0})]


def test_cpuset_outside_the_allowed_cpus(tmp_path, fake_engines):
    fake_engines["runc"] = FakeEngine("runc")
    with pytest.raises(HpcboxError, match="cannot use CPUs 4096"):
        run_cmd._run(parse("--cpuset-cpus", "4096", "--nosysdirs", "x"), FakeContainer(tmp_path / "c"))


@pytest.mark.parametrize("argv, expected", [
    (["run", "img"], "run"),
    (["--home", "/h", "run", "img"], "run"),
    (["--home=/h", "--insecure-registry", "r:5000", "ps"], "ps"),
    (["-h", "run"], None),
    (["--version"], None),
    ([], None),
])
def test_only_the_command_being_run_gets_its_parser(argv, expected):
    from hpcbox.main import _command_in

    assert _command_in(argv) == expected


def test_lean_parser_parses_like_the_full_one():
    argv = ["--home", "/h", "run", "--rm", "-e", "A=1", "img", "sh", "-c", "echo"]
    lean, full = build_parser(argv, full=False), build_parser(argv)
    assert vars(lean.parse_args(argv)) == vars(full.parse_args(argv))
    assert set(lean._subparsers._group_actions[0].choices) == {"run"}
    assert {"run", "setup", "info", "pull"} <= set(full._subparsers._group_actions[0].choices)
    unknown = build_parser(["nosuchcommand"], full=False)  # falls back to the full parser for the error
    assert "pull" in unknown._subparsers._group_actions[0].choices


class _SignalledEngine:
    """Sends hpcbox (this process) a SIGTERM at a chosen moment of its run()."""

    name = "fake"

    def __init__(self, when: str):
        self.when = when

    def available(self):
        return True, "fake"

    def run(self, config, bundle_dir=None):
        if self.when == "before":  # before the engine has handlers of its own: nothing runs yet
            os.kill(os.getpid(), signal.SIGTERM)
        if self.when == "ended":  # the container ended, the engine gave the handlers back, not yet returned
            import subprocess

            from hpcbox_oci_bundle import Container, run_to_completion

            status = run_to_completion(lambda: Container(subprocess.Popen(["sh", "-c", "exit 42"])))
            os.kill(os.getpid(), signal.SIGTERM)  # Slurm's TERM to hpcbox, just after the container's end
            return status
        return 42


def test_a_batch_signal_before_the_engine_starts_ends_hpcbox_with_128_plus_15():
    with pytest.raises(SystemExit) as caught:
        run_cmd._start("fake", _SignalledEngine("before"), {}, "/nonexistent", None)
    assert caught.value.code == 128 + 15


def test_a_batch_signal_right_after_the_container_ended_leaves_its_status():
    # failed before the count of ended runs: the hold's handler, back before run() returned, took
    # the signal for one before the start and ended hpcbox with 143
    assert run_cmd._start("fake", _SignalledEngine("ended"), {}, "/nonexistent", None) == 42


def test_a_late_batch_signal_leaves_the_containers_status():
    assert run_cmd._start("fake", _SignalledEngine("after"), {}, "/nonexistent", None) == 42
    os.kill(os.getpid(), signal.SIGTERM)  # Slurm's TERM to every process of the step, hpcbox last
    os.kill(os.getpid(), signal.SIGUSR1)
    # still alive: the signals were swallowed; the conftest gives the handlers back afterwards
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL


class _HangupEngine:
    """Sends hpcbox (this process) a SIGHUP in its run(), and notes SIGHUP's disposition there."""

    name = "fake"

    def __init__(self):
        self.seen = []

    def available(self):
        return True, "fake"

    def run(self, config, bundle_dir=None):
        self.seen.append(signal.getsignal(signal.SIGHUP))
        os.kill(os.getpid(), signal.SIGHUP)
        return 42


def test_under_nohup_a_hangup_changes_nothing():
    """SIGHUP ignored when hpcbox started (nohup) stays ignored: the hold neither ends hpcbox nor
    hands the engine a handler in its place."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        engine = _HangupEngine()
        assert run_cmd._start("fake", engine, {}, "/nonexistent", None) == 42
        assert engine.seen == [signal.SIG_IGN]
    finally:
        run_cmd.release_signal_holds()
        signal.signal(signal.SIGHUP, previous)


# -- run as me: option, setting, help -------------------------------------------------------------------

def _user_of(tmp_path, fake_engines, monkeypatch, *argv, config=None, env=None):
    home = tmp_path / "store"
    home.mkdir(exist_ok=True)
    if config is not None:
        (home / "config.json").write_text(json.dumps(config))
    monkeypatch.delenv("HPCBOX_RUN_AS", raising=False)
    monkeypatch.setenv("HPCBOX_SITE_CONFIG", str(tmp_path / "no-site.json"))
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    fake_engines["runc"] = engine = FakeEngine("runc")
    container = FakeContainer(tmp_path / "c")
    run_cmd._run(parse("--home", str(home), "--nosysdirs", *argv, "x", "id"), container)
    return engine.calls[-1][0]["process"]["user"]


def test_as_me_option_setting_and_as_root(tmp_path, fake_engines, monkeypatch):
    me = {"uid": os.getuid(), "gid": os.getgid()}
    root = {"uid": 0, "gid": 0}
    assert _user_of(tmp_path, fake_engines, monkeypatch) == root
    assert _user_of(tmp_path, fake_engines, monkeypatch, "--as-me") == me
    assert _user_of(tmp_path, fake_engines, monkeypatch, config={"run_as": "me"}) == me
    assert _user_of(tmp_path, fake_engines, monkeypatch, "--as-root", config={"run_as": "me"}) == root
    assert _user_of(tmp_path, fake_engines, monkeypatch, env={"HPCBOX_RUN_AS": "me"}, config={}) == me


def test_bad_run_as_setting_is_one_clear_error(tmp_path, fake_engines, monkeypatch):
    with pytest.raises(HpcboxError, match=r"run_as in .*config.json is 'sometimes'.*\"root\" or \"me\""):
        _user_of(tmp_path, fake_engines, monkeypatch, config={"run_as": "sometimes"})


def test_run_help_says_the_default_and_how_to_switch(capsys):
    with pytest.raises(SystemExit):
        build_parser(["run", "--help"]).parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--as-me" in text and "--as-root" in text and '"run_as": "me"' in text and "HPCBOX_RUN_AS" in text


def test_info_reports_who_runs(tmp_path, monkeypatch, capsys):
    from hpcbox.commands import info

    monkeypatch.setenv("HPCBOX_RUN_AS", "me")
    report = info.run_as(build_parser().parse_args(["--home", str(tmp_path), "info"]))
    assert report["default"] == "me" and report["set_in"] == "HPCBOX_RUN_AS"
    assert "--as-root" in report["switch"] and "HPCBOX_RUN_AS=root" in report["switch"]


# -- a misspelt container name is not pulled -------------------------------------------------------------

def test_misspelt_container_name_is_not_sent_to_a_registry(tmp_path, monkeypatch):
    from hpcbox import settings

    def no_registry(args):
        raise AssertionError("a registry was asked")

    monkeypatch.setattr(settings, "client", no_registry)
    home = tmp_path / "store"
    for target, words in (("c_nonexist", "no such container or image 'c_nonexist'"),
                          ("Work", "no such container or image 'Work'")):
        with pytest.raises(HpcboxError, match=words) as info:
            run_cmd.run(parse("--home", str(home), target, "true"))
        assert info.value.code == 3
