"""udocker's command line on hpcbox: global options before the command, udocker-only options, the
environment variables, and the pieces `run` takes from udocker (devices, ports, --location)."""

from __future__ import annotations

import io
import os
import sys

import pytest

from hpcbox import udocker
from hpcbox.errors import UsageError
from hpcbox.main import build_parser, main


def parse(*argv: str):
    return build_parser(list(argv), full=False).parse_args(list(argv))


def test_global_options_before_the_command_as_cwltool_sends_them():
    args = parse("--quiet", "run", "--nobanner", "--volume=/a:/b", "--workdir=/w", "--rm", "--env=A=1",
                 "img", "cmd", "--arg")
    assert args.global_quiet and args.nobanner and args.rm
    assert (args.volume, args.workdir, args.env, args.target, args.command) == (
        ["/a:/b"], "/w", ["A=1"], "img", ["cmd", "--arg"])
    args = parse("-D", "--insecure", "--allow-root", "--repo=/r", "pull", "x")
    assert args.global_debug and args.global_insecure and args.home == "/r"


@pytest.mark.parametrize("argv", [["ps", "-m"], ["ps", "-s", "-m"], ["images", "-l"], ["logout", "-a"],
                                  ["import", "--tocontainer", "--name=N", "f.tar"],
                                  ["import", "--clone", "--name=N", "f.tar"], ["inspect", "-p", "c"],
                                  ["setup", "--purge", "--fixperm", "--force", "c"], ["install", "--purge"],
                                  ["search", "-a", "--no-trunc", "--list-tags", "x"], ["showconf"],
                                  ["load", "-"], ["export", "-", "c"], ["run", "-v=/tmp", "-w=/tmp", "c"]])
def test_udocker_forms_parse(argv):
    parse(*argv)


@pytest.mark.parametrize("argv, text", [
    (["--config=/x", "images"], "hpcbox reads <home>/config.json"),
    (["run", "--kernel=6.1", "c"], "host kernel"),
    (["run", "--dns=1.1.1.1", "c"], "-v FILE:/etc/resolv.conf"),
    (["pull", "--httpproxy=socks5://h:1", "x"], "https_proxy"),
    (["create", "--force", "x"], "rmname"),
])
def test_refused_options_say_what_to_use(argv, text, capsys):
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("hpcbox: error: ") and text in err


def test_unknown_command_did_you_mean(capsys):
    with pytest.raises(SystemExit) as info:
        main(["imagse"])
    assert info.value.code == 2
    assert capsys.readouterr().err == "hpcbox: error: unknown command 'imagse'; did you mean 'images'?\n"


def test_help_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["help", "ps"])
    assert info.value.code == 0
    assert "usage: hpcbox ps" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["help"], prog="udocker")
    assert capsys.readouterr().out.startswith("usage: udocker")


def test_quiet_keeps_only_error_lines():
    stream = io.StringIO()
    quiet = udocker.ErrorsOnly(stream)
    quiet.write("abc: downloaded 1 MB\nhpcbox: note: x\nhpcbox: error: bad; fix\nhpcbox: warn")
    quiet.write("ing: y\n")
    quiet.flush()
    assert stream.getvalue() == "hpcbox: error: bad; fix\n"
    assert not quiet.isatty()


def test_quiet_sets_the_commands_quiet_and_wraps_stderr(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    args = parse("-q", "run", "x")
    udocker.apply_globals(args)
    assert args.quiet and isinstance(sys.stderr, udocker.ErrorsOnly)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    args = parse("-q", "images", "--json")
    udocker.apply_globals(args)
    assert not args.quiet  # images -q means "ids only"


def test_loglevel_and_debug(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv("UDOCKER_LOGLEVEL", "2")
    args = parse("pull", "x")
    udocker.apply_globals(args)
    assert args.quiet
    monkeypatch.setenv("UDOCKER_LOGLEVEL", "5")
    monkeypatch.delenv("HPCBOX_DEBUG", raising=False)
    args = parse("-D", "pull", "x")
    udocker.apply_globals(args)
    assert not args.quiet and os.environ["HPCBOX_DEBUG"] == "1"


def test_insecure_allows_the_named_registry(monkeypatch):
    args = parse("--insecure", "pull", "registry.lan:5000/team/app:1")
    udocker.apply_globals(args)
    assert args.insecure_registry == ["registry.lan:5000"]
    args = parse("--insecure", "run", "my-container")
    udocker.apply_globals(args)
    assert args.insecure_registry == ["docker.io"]  # a container name parses as a Docker Hub image
    args = parse("--insecure", "login", "--registry=https://r.lan:443")
    udocker.apply_globals(args)
    assert "r.lan:443" in args.insecure_registry


def test_udocker_dir_and_default_execution_mode(monkeypatch, tmp_path):
    from hpcbox import settings

    monkeypatch.delenv("HPCBOX_HOME", raising=False)
    monkeypatch.setenv("UDOCKER_DIR", str(tmp_path))
    assert settings.home(parse("images")) == tmp_path
    monkeypatch.setenv("HPCBOX_HOME", str(tmp_path / "h"))
    assert settings.home(parse("images")) == tmp_path / "h"
    monkeypatch.setenv("UDOCKER_DEFAULT_EXECUTION_MODE", "p2")
    assert udocker.default_settings()["engine"] == "ptrace"
    monkeypatch.setenv("UDOCKER_DEFAULT_EXECUTION_MODE", "Z9")
    with pytest.raises(UsageError, match="UDOCKER_DEFAULT_EXECUTION_MODE=Z9"):
        udocker.default_settings()


def test_device_volume():
    assert udocker.device_volume("/dev/null") == "/dev/null:/dev/null:rw"
    assert udocker.device_volume("/dev/null:r") == "/dev/null:/dev/null:rw"  # rwm: not enforceable
    assert udocker.device_volume("/dev/null:/dev/x:rwm") == "/dev/null:/dev/x:rw"
    assert udocker.device_volume("/dev/null:/dev/x") == "/dev/null:/dev/x:rw"
    for bad, text in (("/dev/nonexistent-hpcbox", "does not exist"), ("/etc/hostname", "not a device"),
                      ("dev/null", "bad device"), ("/dev/null:x:r", "not absolute")):
        if bad == "/etc/hostname" and not os.path.exists(bad):
            continue
        with pytest.raises(UsageError, match=text):
            udocker.device_volume(bad)


def test_publish_only_same_ports():
    udocker.check_publish(["8080:8080", "9000", "127.0.0.1:53:53/udp"])
    with pytest.raises(UsageError, match="cannot map port 80 to 8080"):
        udocker.check_publish(["8080:80"])


def test_with_registry():
    assert udocker.with_registry("team/app:1", "https://r.lan:5000/") == "r.lan:5000/team/app:1"
    assert udocker.with_registry("other.org/app", "https://r.lan") == "other.org/app"
    assert udocker.with_registry("app", None) == "app"


def test_run_operands_with_location(tmp_path):
    args = parse("run", "--location", str(tmp_path), "/bin/sh", "-c", "x")
    udocker.prepare_run(args)
    assert args.target is None and args.command == ["/bin/sh", "-c", "x"]
    args = parse("run", "--location", str(tmp_path), "--rm")
    with pytest.raises(UsageError, match="--rm and --name"):
        udocker.prepare_run(args)
    with pytest.raises(UsageError, match="no image or container"):
        udocker.prepare_run(parse("run"))


def test_novol_drops_only_hpcbox_binds():
    config = {"mounts": [{"destination": "/etc/hosts", "source": "/etc/hosts"},
                         {"destination": "/etc/resolv.conf", "source": "/etc/resolv.conf"},
                         {"destination": "/data", "source": "/data"}]}
    udocker.drop_novol(config, ["/etc/hosts", "/data"])
    assert [m["destination"] for m in config["mounts"]] == ["/etc/resolv.conf", "/data"]
