"""The engine runs real containers from a busybox bundle, with the builtin runner and with runc."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hpcbox_engine_runc import BundleError, engine

pytestmark = pytest.mark.usefixtures("need_userns")
RUNTIME = "org.hpcbox.runc.runtime"


def _netdev_names(text):
    """Interface names from /proc/net/dev (two header lines, then `name: counters`)."""
    return sorted(line.split(":")[0].strip() for line in text.splitlines()[2:] if ":" in line)


def _ann(runtime, **more):
    return {RUNTIME: runtime, **more}


def test_echo_and_exit_status_pass_through(make_bundle, runtime, run):
    bundle = make_bundle(["sh", "-c", "echo hello from $0; exit 42", "inside"], annotations=_ann(runtime))
    result = run(bundle)
    assert result.out == "hello from inside\n"
    assert result.code == 42


def test_death_by_signal_gives_128_plus_n(make_bundle, run):
    # builtin only: under runc the program is pid 1 of its namespace and ignores its own signals
    bundle = make_bundle(["sh", "-c", "kill -USR1 $$; echo not reached"])
    result = run(bundle)
    assert result.code == 128 + signal.SIGUSR1
    assert "not reached" not in result.out


def test_sigterm_to_the_engine_process_reaches_the_container(make_bundle, runtime):
    script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"
    bundle = make_bundle(["sh", "-c", script], annotations=_ann(runtime))
    container = engine.start(bundle, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        assert container.process.stdout.readline() == b"ready\n"
        container.send_signal(signal.SIGTERM)
        assert container.wait(timeout=60) == 7
        assert container.process.stdout.read() == b"got-term\n"
    finally:
        if container.poll() is None:
            container.process.kill()
            container.wait()


def test_sigterm_at_any_point_of_the_start_ends_the_program(make_bundle):
    """A SIGTERM that reaches the runner while it sets the container up (before or while init forks
    the program, before its exec) must still end the program: it was once swallowed by init's
    handler, inherited by the program until its exec, and the program ran on."""
    bundle = make_bundle(["sleep", "20"])
    for i in range(16):
        container = engine.start(bundle, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            time.sleep(i * 0.002)  # sweep the start: exec of the runner, namespaces, mounts, fork, exec
            container.send_signal(signal.SIGTERM)
            assert container.wait(timeout=60) == 128 + signal.SIGTERM, f"delay {i * 2} ms"
        finally:
            if container.poll() is None:
                container.process.kill()
                container.wait()


def test_sigterm_to_the_python_caller_is_forwarded_by_run(make_bundle, tmp_path, run):
    script = "trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.05; done"
    bundle = make_bundle(["sh", "-c", script])
    caller = textwrap.dedent(f"""
        import sys
        from hpcbox_engine_runc import BundleError, engine
        sys.exit(engine.run({str(bundle)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", caller], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 9
        assert proc.stdout.read() == b"got-term\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stdin_passes_through(make_bundle, runtime, run):
    bundle = make_bundle(["cat"], annotations=_ann(runtime))
    result = run(bundle, stdin_text="line one\nline two\n")
    assert (result.code, result.out) == (0, "line one\nline two\n")


def test_env_cwd_and_hostname(make_bundle, runtime, run):
    bundle = make_bundle(
        ["sh", "-c", 'echo "$GREETING|$(pwd)|$(hostname)|$PATH"'],
        env=["PATH=/bin", "GREETING=hi there"], cwd="/tmp", hostname="box-42", annotations=_ann(runtime),
    )
    result = run(bundle)
    assert result.out == "hi there|/tmp|box-42|/bin\n", result


def test_only_the_config_env_is_visible(make_bundle, monkeypatch, run):
    monkeypatch.setenv("HPCBOX_LEAK_CHECK", "leaked")
    result = run(make_bundle(["env"], env=["PATH=/bin", "A=1"]))
    assert sorted(result.out.split()) == ["A=1", "PATH=/bin"]


def test_container_user_is_root_by_default(make_bundle, runtime, run):
    result = run(make_bundle(["sh", "-c", "id -u; id -g; whoami"], annotations=_ann(runtime)))
    assert result.out.split() == ["0", "0", "root"]


def test_container_user_can_be_the_caller(make_bundle, run):
    uid, gid = os.getuid(), os.getgid()
    bundle = make_bundle(["sh", "-c", "id -u; id -g"], user={"uid": uid, "gid": gid})
    assert run(bundle).out.split() == [str(uid), str(gid)]


def test_runc_delegation_refuses_a_non_root_user_clearly(make_bundle, run):
    if not shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin"):
        pytest.skip("runc is not installed")
    bundle = make_bundle(["id", "-u"], user={"uid": 1234, "gid": 1234}, annotations=_ann("runc"))
    with pytest.raises(BundleError, match=r"runc rootless runs only as container root .* builtin runtime"):
        run(bundle)


def test_any_single_container_user_maps_to_the_caller(make_bundle, tmp_path, run):
    bundle = make_bundle(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"], user={"uid": 1234, "gid": 99},
                         annotations={"org.hpcbox.runc.idmap": "single"})
    out = run(bundle).out.split()
    assert out == ["1234", "99", "1234", str(os.getuid()), "1"]


def test_proc_belongs_to_the_container_pid_namespace(make_bundle, run):
    script = "echo $$; cat /proc/1/cmdline | head -c 200; echo; ls /proc | grep -c '^[0-9]'"
    result = run(make_bundle(["sh", "-c", script]))
    pid, cmdline, count = result.out.splitlines()
    assert pid == "2"  # pid 1 is the runner's init
    assert cmdline.startswith("hpcbox-userns") or "/hpcbox-userns" in cmdline
    assert int(count) <= 5  # init, sh, ls, grep: the host's processes are not there


def test_rw_and_ro_volumes(make_bundle, tmp_path, runtime, run):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "given.txt").write_text("from the host\n")
    mounts = [
        {"destination": "/data/rw", "type": "bind", "source": str(rw), "options": ["rbind", "rw"]},
        {"destination": "/data/ro", "type": "bind", "source": str(ro), "options": ["rbind", "ro"]},
    ]
    script = "echo written > /data/rw/out.txt; cat /data/ro/given.txt; echo x > /data/ro/no.txt; echo rc=$?"
    result = run(make_bundle(["sh", "-c", script], mounts=mounts, annotations=_ann(runtime)))
    assert (rw / "out.txt").read_text() == "written\n"
    assert "from the host\n" in result.out
    assert "rc=1" in result.out
    assert "Read-only file system" in result.err
    assert not (ro / "no.txt").exists()


def test_a_file_volume_and_a_tmpfs(make_bundle, tmp_path, run):
    single = tmp_path / "single.conf"
    single.write_text("one file\n")
    mounts = [
        {"destination": "/etc/single.conf", "type": "bind", "source": str(single), "options": ["bind", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777"]},
    ]
    script = "cat /etc/single.conf; stat -f -c %T /scratch; stat -c %a /scratch"
    result = run(make_bundle(["sh", "-c", script], mounts=mounts))
    assert result.out.split("\n")[:3] == ["one file", "tmpfs", "1777"], result


def test_mount_through_an_absolute_symlink_stays_in_the_rootfs(make_bundle, rootfs, tmp_path, run):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "marker").write_text("here\n")
    mounts = [{"destination": "/var/run/sub", "type": "bind", "source": str(vol), "options": ["rbind"]}]
    result = run(make_bundle(["cat", "/run/sub/marker"], mounts=mounts))
    assert (result.code, result.out) == (0, "here\n"), result
    assert (rootfs / "run" / "sub").is_dir()
    assert not os.path.exists("/run/sub/marker")


def test_readonly_root(make_bundle, run):
    result = run(make_bundle(["sh", "-c", "touch /tmp/x; echo rc=$?"], readonly=True))
    assert "rc=1" in result.out
    assert "Read-only file system" in result.err


def test_dev_nodes_and_sys(make_bundle, run):
    script = "echo hi > /dev/null && head -c 4 /dev/zero | wc -c; ls /dev; ls /sys | head -3; touch /sys/x"
    result = run(make_bundle(["sh", "-c", script]))
    lines = result.out.split()
    assert lines[0] == "4"
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "fd", "stdin"):
        assert name in lines
    assert "block" in lines or "bus" in lines
    assert "Read-only file system" in result.err


def test_net_none_has_only_loopback_and_it_is_up(make_bundle, runtime, run):
    script = "cat /proc/net/dev; echo ---; ip link"
    bundle = make_bundle(["sh", "-c", script], annotations=_ann(runtime, **{"org.hpcbox.net": "none"}))
    result = run(bundle)
    assert result.code == 0, result
    netdev, links = result.out.split("---\n")
    assert _netdev_names(netdev) == ["lo"]
    first_lines = [line for line in links.splitlines() if line[:1].isdigit()]
    assert len(first_lines) == 1 and ": lo: " in first_lines[0], links
    flags = first_lines[0].split("<")[1].split(">")[0].split(",")
    assert "UP" in flags, links


def test_net_none_shows_its_own_sysfs(make_bundle, run):
    bundle = make_bundle(["ls", "/sys/class/net"], annotations={"org.hpcbox.net": "none"})
    assert run(bundle).out.split() == ["lo"]


def test_host_network_by_default(make_bundle, run):
    with open("/proc/net/dev") as handle:
        host = _netdev_names(handle.read())
    result = run(make_bundle(["cat", "/proc/net/dev"]))
    assert _netdev_names(result.out) == host


def test_program_not_found_gives_127(make_bundle, run):
    result = run(make_bundle(["/bin/no-such-program"]))
    assert result.code == 127
    assert "hpcbox-userns: exec /bin/no-such-program: No such file or directory" in result.err


def test_not_executable_gives_126(make_bundle, run):
    result = run(make_bundle(["/etc/passwd"]))
    assert result.code == 126
    assert "Permission denied" in result.err


def test_runtime_failure_gives_125_and_one_line(make_bundle, run):
    result = run(make_bundle(["true"], cwd="/does/not/exist"))
    assert result.code == 125
    assert result.err.strip().splitlines() == [
        "hpcbox-userns: chdir to the working directory /does/not/exist: No such file or directory"
    ]


def test_config_dict_is_accepted(rootfs, run):
    config = {"process": {"args": ["sh", "-c", "exit 5"], "env": ["PATH=/bin"]},
              "root": {"path": str(rootfs)}}
    assert engine.run(config, stdout=subprocess.DEVNULL) == 5


def test_run_from_a_worker_thread(make_bundle, run):
    import threading

    results = []
    worker = threading.Thread(target=lambda: results.append(run(make_bundle(["sh", "-c", "echo t; exit 3"]))))
    worker.start()
    worker.join(timeout=120)
    assert [(r.code, r.out) for r in results] == [(3, "t\n")]


def test_signal_handlers_of_the_caller_are_restored(make_bundle, run):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    run(make_bundle(["true"]))
    assert {sig: signal.getsignal(sig) for sig in before} == before


def _run_on_pty(bundle):
    import pty
    import tempfile

    master, slave = pty.openpty()
    try:
        with tempfile.TemporaryFile() as out:
            code = engine.run(bundle, stdin=slave, stdout=out, stderr=out)
            out.seek(0)
            return code, out.read().decode(), os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_terminal_keeps_the_callers_tty_name(make_bundle):
    code, out, name = _run_on_pty(make_bundle(["tty"], process_terminal=True))
    assert (code, out) == (0, name + "\n")


def test_without_terminal_the_container_has_its_own_devpts(make_bundle):
    code, out, _ = _run_on_pty(make_bundle(["tty"]))
    assert (code, out.strip()) == (1, "not a tty")


def _pids_with(word: str):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if word.encode() in handle.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def test_a_sigkilled_caller_takes_the_container_with_it(make_bundle, tmp_path):
    """A batch system may SIGKILL `hpcbox run` alone: the runner and the container must not outlive it."""
    marker = str(700000 + os.getpid() % 100000)
    bundle = make_bundle(["sh", "-c", f"sleep {marker} & sleep {marker}; wait"])
    caller = textwrap.dedent(f"""\
        import subprocess, sys, time
        from hpcbox_engine_runc import engine
        engine.start({str(bundle)!r}, stdin=subprocess.DEVNULL)
        time.sleep(600)
        """)
    process = subprocess.Popen([sys.executable, "-c", caller])
    try:
        deadline = time.monotonic() + 60
        while len(_pids_with(marker)) < 2:
            assert time.monotonic() < deadline, "the container's sleeps never started"
            time.sleep(0.05)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 30
        while _pids_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pids_with(marker) == [], "the container outlived its SIGKILLed caller"
    finally:
        for pid in _pids_with(marker):
            os.kill(pid, signal.SIGKILL)
