"""engine.run() against stand-in binaries: the exec command line, environment, and passthrough."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from singularity_standin import CALLER, run_bundle

from hpcbox_engine_singularity import BundleError, SingularityEngine, UnavailableError


def default_signals(argv: list) -> list:
    """*argv* started with the default action for SIGHUP, SIGINT and SIGTERM (then exec'd, so nothing
    runs between fork and exec). Started from `nohup` or as a background job, the test run ignores
    SIGHUP or SIGINT and a child would inherit that: a shell cannot trap a signal that was ignored
    when it started, and Python installs no KeyboardInterrupt handler."""
    reset = ("import os, signal, sys\n"
             "for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):\n"
             "    signal.signal(s, signal.SIG_DFL)\n"
             "os.execvp(sys.argv[1], sys.argv[1:])\n")
    return [sys.executable, "-c", reset, *argv]


def test_basic_exec_line_apptainer(standin, make_engine, make_bundle, run, rootfs):
    fake = standin("apptainer-1.2.5")
    bundle = make_bundle(["/bin/sh", "-c", "echo hello; exit 3"], cwd="/tmp")
    result = run(make_engine(fake), bundle)
    assert result.code == 3
    assert result.out == "hello\n"
    record = fake.last()
    assert record["argv"][1] == "exec"
    assert record["container"] == str(rootfs)
    assert record["command"] == ["/bin/sh", "-c", "echo hello; exit 3"]
    assert fake.has_option("cleanenv")
    assert fake.has_option("writable")
    assert fake.has_option("no-home")
    assert fake.option_values("pwd") == ["/tmp"]
    assert fake.option_values("no-mount") == ["tmp,cwd"]
    assert not fake.has_option("fakeroot")  # the config asks for the caller's own uid
    assert result.err == ""


@pytest.mark.parametrize("case", [
    ("apptainer-1.2.5", "APPTAINERENV_", "SINGULARITYENV_"),
    ("singularity-ce-3.11.4", "SINGULARITYENV_", "APPTAINERENV_"),
    ("singularity-3.2.1", "SINGULARITYENV_", "APPTAINERENV_"),
])
def test_environment_goes_through_the_binary_prefix(standin, make_engine, make_bundle, monkeypatch, case):
    kind, prefix, other = case
    monkeypatch.setenv("APPTAINERENV_LEAK", "from-the-caller")
    monkeypatch.setenv("SINGULARITYENV_LEAK2", "from-the-caller")
    monkeypatch.setenv("HOST_ONLY", "host")
    fake = standin(kind)
    env = ["PATH=/usr/bin:/bin", "GREETING=hello world", "EMPTY=", "WITH_EQ=a=b", "HOME=/root"]
    result = run_bundle(make_engine(fake), make_bundle(["env"], env=env))
    assert result.code == 0, result
    printed = dict(line.split("=", 1) for line in result.out.splitlines())
    assert printed["GREETING"] == "hello world"
    assert printed["EMPTY"] == ""
    assert printed["WITH_EQ"] == "a=b"
    assert printed["PATH"] == "/usr/bin:/bin"
    assert "LEAK" not in printed and "LEAK2" not in printed and "HOST_ONLY" not in printed
    sent = fake.last()["env"]
    assert sent[prefix + "GREETING"] == "hello world"
    assert not any(k.startswith(other) for k in sent)
    assert prefix + "HOME" not in sent  # HOME cannot be set that way; --home handles it
    assert sent["HOST_ONLY"] == "host"  # the binary itself keeps the caller's environment


def test_stdin_passes_through(standin, make_engine, make_bundle, run):
    fake = standin("apptainer-1.2.5")
    text = "line one\nline two\n" * 1000
    result = run(make_engine(fake), make_bundle(["cat"]), stdin_text=text)
    assert result.code == 0
    assert result.out == text


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV], ids=lambda s: s.name)
def test_signal_death_is_128_plus_n(standin, make_engine, make_bundle, run, sig):
    fake = standin("singularity-ce-3.11.4")
    result = run(make_engine(fake), make_bundle(["/bin/sh", "-c", f"kill -{int(sig)} $$"]))
    assert result.code == 128 + sig


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_codes(standin, make_engine, make_bundle, run, code):
    fake = standin("apptainer-1.2.5")
    assert run(make_engine(fake), make_bundle(["/bin/sh", "-c", f"exit {code}"])).code == code


def test_binary_failure_is_its_status(standin, make_engine, make_bundle, run):
    fake = standin("apptainer-1.2.5")
    result = run(make_engine(fake), make_bundle(["/no/such/program"]))
    assert result.code == 255
    assert "FATAL" in result.err and "/no/such/program" in result.err


def test_binds_ro_and_rw_and_skipped_mounts(standin, make_engine, make_bundle, tmp_path, rootfs):
    data = tmp_path / "data"
    data.mkdir()
    conf = tmp_path / "app.conf"
    conf.write_text("x")
    (tmp_path / "relative").mkdir()
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
        {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "rw"]},
        {"destination": "/etc/app.conf", "type": "bind", "source": str(conf), "options": ["rbind", "ro"]},
        {"destination": "/opt/rel", "source": "../relative", "options": ["bind", "ro"]},
        {"destination": "/var/run/sock", "type": "bind", "source": str(data)},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"},
    ]
    fake = standin("apptainer-1.2.5")
    result = run_bundle(make_engine(fake), make_bundle(mounts=mounts))
    assert result.code == 0, result
    assert fake.option_values("bind") == [
        f"{data}:/data", f"{conf}:/etc/app.conf:ro", f"{tmp_path / 'relative'}:/opt/rel:ro",
        f"{data}:/var/run/sock",
    ]
    assert fake.option_values("scratch") == ["/scratch"]
    workdir = fake.option_values("workdir")
    assert len(workdir) == 1 and "hpcbox-apptainer-" in workdir[0]
    assert not os.path.exists(workdir[0])  # removed when the container ended
    # mount points a --writable sandbox lacks are made, resolved inside the rootfs
    assert (rootfs / "data").is_dir()
    assert (rootfs / "etc" / "app.conf").is_file()
    assert (rootfs / "opt" / "rel").is_dir()
    assert (rootfs / "run" / "sock").is_dir()
    assert not (tmp_path / "rootfs" / "proc" / "x").exists()


def test_readonly_root_is_left_alone(standin, make_engine, make_bundle, tmp_path, rootfs):
    data = tmp_path / "data"
    data.mkdir()
    fake = standin("apptainer-1.2.5")
    bundle = make_bundle(readonly=True, cwd="/work",
                         mounts=[{"destination": "/data", "type": "bind", "source": str(data)}])
    assert run_bundle(make_engine(fake), bundle).code == 0
    assert not fake.has_option("writable")
    assert not (rootfs / "data").exists() and not (rootfs / "work").exists()
    assert not (rootfs / "etc" / "hosts").exists()


def test_cwd_spelling_of_apptainer_1_4(standin, make_engine, make_bundle, run):
    fake = standin("apptainer-1.4.5")
    result = run(make_engine(fake), make_bundle(["/bin/sh", "-c", "exit 2"], cwd="/tmp"))
    assert result.code == 2, result
    assert fake.option_values("cwd") == ["/tmp"]
    assert not fake.has_option("pwd")


def test_workdir_is_created_in_a_writable_sandbox(standin, make_engine, make_bundle, run, rootfs):
    fake = standin("apptainer-1.2.5")
    assert run(make_engine(fake), make_bundle(cwd="/srv/app")).code == 0
    assert (rootfs / "srv" / "app").is_dir()
    assert fake.option_values("pwd") == ["/srv/app"]


def test_home_covered_by_a_bind_becomes_home(standin, make_engine, make_bundle, run, tmp_path):
    home = tmp_path / "myhome"
    home.mkdir()
    fake = standin("apptainer-1.2.5")
    bundle = make_bundle(["env"], env=["PATH=/bin", "HOME=/home/me"],
                         mounts=[{"destination": "/home/me", "type": "bind", "source": str(home)}])
    result = run(make_engine(fake), bundle)
    assert result.code == 0
    assert fake.option_values("home") == [f"{home}:/home/me"]
    assert not fake.has_option("no-home")
    assert fake.option_values("bind") == []
    assert "HOME=/home/me" in result.out.splitlines()


def test_home_under_a_bound_parent(standin, make_engine, make_bundle, run, tmp_path):
    homes = tmp_path / "homes"
    (homes / "me").mkdir(parents=True)
    fake = standin("apptainer-1.2.5")
    bundle = make_bundle(env=["PATH=/bin", "HOME=/home/me"],
                         mounts=[{"destination": "/home", "type": "bind", "source": str(homes)}])
    assert run(make_engine(fake), bundle).code == 0
    assert fake.option_values("home") == [f"{homes}/me:/home/me"]
    assert fake.option_values("bind") == [f"{homes}:/home"]


def test_no_home_when_nothing_covers_it(standin, make_engine, make_bundle, run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    fake = standin("apptainer-1.2.5")
    bundle = make_bundle(env=["PATH=/bin", "HOME=/root"],
                         mounts=[{"destination": "/rootish", "type": "bind", "source": str(other)}])
    result = run(make_engine(fake), bundle)
    assert result.code == 0
    assert fake.has_option("no-home")
    assert fake.option_values("home") == ["/root"]  # with --no-home, only sets $HOME
    assert fake.last()["container_env"]["HOME"] == "/root"


def test_home_is_never_mounted_from_the_host_without_no_home(standin, make_engine, make_bundle, run):
    fake = standin("singularity-3.8.7", drop=("no-home",))
    assert run(make_engine(fake), make_bundle(env=["PATH=/bin", "HOME=/root"])).code == 0
    assert not fake.has_option("home") and not fake.has_option("no-home")


def test_writable_sandbox_gets_the_standard_mount_points(standin, make_engine, make_bundle, run, tmp_path):
    bare = tmp_path / "bare"
    (bare / "bin").mkdir(parents=True)
    fake = standin("apptainer-1.2.5")
    assert run(make_engine(fake), make_bundle(root=str(bare), hostname="h")).code == 0
    for directory in ("proc", "sys", "dev", "tmp", "var/tmp"):
        assert (bare / directory).is_dir(), directory
    for name in ("hosts", "localtime", "resolv.conf", "passwd", "group", "hostname"):
        assert (bare / "etc" / name).is_file(), name
    assert (bare / "etc" / "hosts").read_text() == ""


def test_existing_files_and_links_are_left_alone(standin, make_engine, make_bundle, run, rootfs):
    (rootfs / "etc" / "localtime").symlink_to("/usr/share/zoneinfo/Nowhere")
    (rootfs / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    fake = standin("apptainer-1.2.5")
    assert run(make_engine(fake), make_bundle()).code == 0
    assert os.readlink(rootfs / "etc" / "localtime") == "/usr/share/zoneinfo/Nowhere"
    assert (rootfs / "etc" / "hosts").read_text() == "127.0.0.1 localhost\n"


def test_old_singularity_gets_only_the_options_it_has(standin, make_engine, make_bundle, run):
    # the stand-in fails with "unknown flag" (status 255) if given an option that version lacks
    fake = standin("singularity-3.2.1")
    bundle = make_bundle(["/bin/sh", "-c", "exit 5"], hostname="box", user={"uid": 0, "gid": 0})
    result = run(make_engine(fake), bundle)
    assert result.code == 5, result
    assert not fake.has_option("no-mount") and not fake.has_option("hostname")
    assert "asked for root (uid 0) but singularity 3.2.1 has no --fakeroot option" in result.err


def test_hostname_with_uts(standin, make_engine, make_bundle, run):
    fake = standin("apptainer-1.2.5")
    assert run(make_engine(fake), make_bundle(hostname="box")).code == 0
    assert fake.has_option("uts")
    assert fake.option_values("hostname") == ["box"]


def test_fakeroot_for_uid_0_when_allowed(standin, make_engine, make_bundle, run):
    fake = standin("apptainer-1.2.5")
    result = run(make_engine(fake), make_bundle(user={"uid": 0, "gid": 0}))
    assert result.code == 0
    assert fake.has_option("fakeroot")
    assert result.err == ""


def test_fakeroot_refused_says_so_once(standin, make_engine, make_bundle, run):
    fake = standin("singularity-ce-3.11.4")
    engine = make_engine(fake, subuid="someoneelse:100000:65536\n")
    bundle = make_bundle(["/bin/sh", "-c", "echo out; echo err >&2"], user={"uid": 0, "gid": 0})
    first = run(engine, bundle)
    assert first.code == 0
    assert not fake.has_option("fakeroot")
    assert first.err.splitlines()[0] == (
        f"hpcbox: the container asked for root (uid 0) but uid {CALLER} has no range in "
        f"{engine._subuid_path}, which singularity 3.11.4 needs to fake root; it runs as your uid {CALLER}"
    )
    assert first.err.splitlines()[1:] == ["err"]
    second = run(engine, bundle)
    assert second.err == "err\n"


def test_fakeroot_annotation(standin, make_engine, make_bundle, run):
    fake = standin("singularity-ce-3.11.4")
    engine = make_engine(fake)  # no /etc/subuid range
    forced = make_bundle(user={"uid": 0, "gid": 0}, annotations={"org.hpcbox.singularity.fakeroot": "true"})
    assert run(engine, forced).code == 0
    assert fake.has_option("fakeroot")
    apptainer = standin("apptainer-1.2.5")
    off = make_bundle(user={"uid": 0, "gid": 0}, annotations={"org.hpcbox.singularity.fakeroot": "false"})
    result = run(make_engine(apptainer), off)
    assert not apptainer.has_option("fakeroot")
    assert "turned off by org.hpcbox.singularity.fakeroot=false" in result.err


def test_no_fakeroot_needed_when_the_caller_is_root(standin, make_engine, make_bundle, run):
    fake = standin("apptainer-1.2.5")
    result = run(make_engine(fake, caller_uid=0), make_bundle(user={"uid": 0, "gid": 0}))
    assert result.code == 0 and result.err == ""
    assert not fake.has_option("fakeroot")


def test_other_uid_runs_as_the_caller_and_says_so(standin, make_engine, make_bundle, run):
    fake = standin("apptainer-1.2.5")
    result = run(make_engine(fake), make_bundle(user={"uid": 1000, "gid": 1000}))
    assert result.code == 0
    assert f"the container asked for uid 1000; apptainer runs it as your uid {CALLER}" in result.err


@pytest.mark.parametrize(("gpu", "flag"), [("nvidia", "nv"), ("rocm", "rocm")])
def test_gpus(standin, make_engine, make_bundle, gpu, flag):
    fake = standin("apptainer-1.2.5")
    bundle = make_bundle(annotations={"org.hpcbox.singularity.gpu": gpu})
    assert run_bundle(make_engine(fake), bundle).code == 0
    assert fake.has_option(flag)
    assert not fake.has_option({"nv": "rocm", "rocm": "nv"}[flag])


def test_gpu_option_missing(standin, make_engine, make_bundle):
    fake = standin("singularity-3.2.1")
    bundle = make_bundle(annotations={"org.hpcbox.singularity.gpu": "rocm"})
    with pytest.raises(UnavailableError, match=r"singularity 3\.2\.1 has no --rocm option for rocm GPUs"):
        make_engine(fake).run(bundle)
    assert fake.records() == []


@pytest.mark.parametrize("how", [{"annotations": {"org.hpcbox.net": "none"}},
                                 {"linux": {"namespaces": [{"type": "network"}, {"type": "mount"}]}}],
                         ids=["annotation", "namespace"])
def test_no_network(standin, make_engine, make_bundle, run, how):
    fake = standin("singularity-ce-3.11.4")
    assert run(make_engine(fake), make_bundle(**how)).code == 0
    assert fake.has_option("net")
    assert fake.option_values("network") == ["none"]


def test_host_network_by_default(standin, make_engine, make_bundle, run):
    fake = standin("singularity-ce-3.11.4")
    assert run(make_engine(fake), make_bundle(annotations={"org.hpcbox.net": "host"})).code == 0
    assert not fake.has_option("net") and not fake.has_option("network")


def test_userns_and_containall_annotations(standin, make_engine, make_bundle, run):
    fake = standin("apptainer-1.2.5")
    annotations = {"org.hpcbox.singularity.userns": "true", "org.hpcbox.singularity.containall": "1",
                   "org.hpcbox.singularity.no-mount": ""}
    assert run(make_engine(fake), make_bundle(annotations=annotations)).code == 0
    assert fake.has_option("userns") and fake.has_option("containall")
    assert not fake.has_option("no-mount")


def test_unusable_binary_refuses_to_run(standin, make_engine, make_bundle):
    fake = standin("singularity-2.6.1")
    with pytest.raises(UnavailableError, match="is too old"):
        make_engine(fake).run(make_bundle())


def test_the_end_of_a_run_is_counted_for_the_cli(standin, make_engine, make_bundle, run):
    # the CLI's hold of batch signals tells a SIGTERM after the container's end by this count
    import hpcbox_oci_bundle

    fake = standin("apptainer-1.2.5")
    before = hpcbox_oci_bundle.runs_ended()
    assert run(make_engine(fake), make_bundle(["/bin/sh", "-c", "exit 3"])).code == 3
    assert hpcbox_oci_bundle.runs_ended() == before + 1


def test_runs_from_a_thread_without_forwarding(standin, make_engine, make_bundle, run):
    import threading

    fake = standin("apptainer-1.2.5")
    engine = make_engine(fake)
    results = []
    bundle = make_bundle(["/bin/sh", "-c", "exit 9"])
    worker = threading.Thread(target=lambda: results.append(run(engine, bundle)))
    worker.start()
    worker.join()
    assert results[0].code == 9


def test_default_engine_uses_path(standin, make_bundle, run, monkeypatch):
    fake = standin("apptainer-1.0.3")  # first on PATH, before any real apptainer
    monkeypatch.setenv("PATH", f"{fake.path.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("HPCBOX_SINGULARITY", raising=False)
    result = run(SingularityEngine(), make_bundle(["/bin/sh", "-c", "exit 4"]))
    assert result.code == 4
    assert fake.records()


FORWARD_SCRIPT = textwrap.dedent("""
    import sys
    from hpcbox_engine_singularity import SingularityEngine
    engine = SingularityEngine(sys.argv[1], caller_uid=int(sys.argv[3]))
    sys.exit(engine.run(sys.argv[2]))
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_signals_are_forwarded(standin, make_bundle, sig):
    fake = standin("apptainer-1.2.5")
    script = f"trap 'echo got; exit 42' {sig.name[3:]}; echo ready; while :; do sleep 0.05; done"
    bundle = make_bundle(["/bin/sh", "-c", script])
    argv = default_signals([sys.executable, "-c", FORWARD_SCRIPT, str(fake.path), str(bundle), str(CALLER)])
    child = subprocess.Popen(argv,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        assert child.stdout.readline() == b"ready\n"
        child.send_signal(sig)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert out == b"got\n", err
    assert child.returncode == 42, err


COUNTER = textwrap.dedent("""
    import os, signal, sys
    os.setpgid(0, 0)  # out of the terminal's foreground group: any SIGINT now comes from the engine
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    print("ready", flush=True)
    seen = []
    while True:
        info = signal.sigwaitinfo({signal.SIGINT, signal.SIGTERM})
        if info.si_signo == signal.SIGTERM:
            print("INT from " + ",".join(seen), flush=True)
            sys.exit(0)
        seen.append("tty" if info.si_code == 0x80 else "kill")
        print("got INT", flush=True)
""")


def _read_until(fd, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        data += chunk
    return data


def test_terminal_ctrl_c_is_not_forwarded_again(standin, make_bundle):
    """Ctrl-C on a terminal goes to the whole foreground process group, apptainer included, so the
    engine must not forward it a second time (it does forward SIGTERM sent to it by kill). The
    container process leaves the foreground group here, so every SIGINT it sees came from the engine."""
    import pty

    fake = standin("apptainer-1.2.5")
    bundle = make_bundle([sys.executable, "-c", COUNTER])
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child: session leader on the pty, runs the engine
        argv = [sys.executable, "-c", FORWARD_SCRIPT, str(fake.path), str(bundle), str(CALLER)]
        os.execv(sys.executable, argv)
    try:
        assert b"ready" in _read_until(master, b"ready")
        os.write(master, b"\x03")  # the terminal's interrupt character, to the engine's process group
        assert b"^C" in _read_until(master, b"^C")  # echoed once the terminal has sent SIGINT
        os.kill(pid, signal.SIGTERM)  # the engine takes the pending SIGINT first (lower number)
        out = _read_until(master, b"INT from")
        out += _read_until(master, b"\n")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(master)
    assert b"INT from \r\n" in out or b"INT from \n" in out, out
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"process": {"args": []}}, "process.args is"),
        ({"process": {"args": ["x"], "env": ["NOEQUALS"]}}, "process.env entry 'NOEQUALS' is malformed"),
        ({"process": {"args": ["x"], "cwd": "relative"}}, "process.cwd is 'relative'"),
        ({"process": {"args": ["x"], "user": {"uid": -1}}}, "process.user.uid is -1"),
        ({"root": {"path": "missing-rootfs"}}, "root.path .*missing-rootfs is not a directory"),
        ({"root": {}}, "root.path is missing"),
        ({"annotations": {"org.hpcbox.singularity.gpu": "intel"}}, "gpu='intel' is unknown: use 'nvidia'"),
        ({"annotations": {"org.hpcbox.singularity.fakeroot": "maybe"}}, "fakeroot='maybe' is unknown"),
        ({"annotations": {"org.hpcbox.singularity.userns": "perhaps"}}, "userns='perhaps' is not a boolean"),
        ({"mounts": [{"destination": "rel", "type": "bind", "source": "/"}]}, r"mounts\[0\].destination"),
        ({"mounts": [{"destination": "/x", "type": "bind", "source": "/no/such/dir"}]},
         "bind source /no/such/dir does not exist"),
        ({"mounts": [{"destination": "/a:b", "type": "bind", "source": "/"}]}, "contains ':' or ','"),
        ({"mounts": [{"destination": "/n", "type": "nfs", "source": "server:/x"}]},
         "a nfs mount on /n cannot be made by Apptainer: use a bind mount"),
        ({"hostname": "x" * 65}, "hostname .* is invalid"),
        ({"annotations": {"org.hpcbox.net": "bridge"}}, "'bridge' is unknown: use 'host' or 'none'"),
        ({"linux": {"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}]}},
         "joining an existing network namespace .* is not supported by Apptainer: drop"),
    ],
)
def test_bad_bundles_are_refused_with_the_fix(tmp_path, standin, make_engine, change, message):
    (tmp_path / "rootfs").mkdir()
    config = {"process": {"args": ["/bin/true"]}, "root": {"path": "rootfs"}}
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    fake = standin("apptainer-1.2.5")
    with pytest.raises(BundleError, match=message) as caught:
        make_engine(fake).run(tmp_path)
    assert "\n" not in str(caught.value) and ": " in str(caught.value)
    assert fake.records() == []


def test_missing_config(tmp_path, standin, make_engine):
    with pytest.raises(BundleError, match=r"no OCI runtime config at .*config.json: give a bundle directory"):
        make_engine(standin()).run(tmp_path)


def test_config_file_and_dict_forms(standin, make_engine, make_bundle, run, rootfs):
    fake = standin("apptainer-1.2.5")
    engine = make_engine(fake)
    bundle = make_bundle(["/bin/sh", "-c", "exit 6"], root="../rootfs")
    assert run(engine, bundle / "config.json").code == 6
    config = json.loads((bundle / "config.json").read_text())
    assert engine.run(config, bundle_dir=str(bundle)) == 6
    assert fake.last()["container"] == str(rootfs)
