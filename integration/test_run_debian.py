"""`hpcbox run` with the real Debian 12 and busybox images, as the calling user (unprivileged in CI).

Every test runs under each engine of ``common.RUN_ENGINES`` (the delegation tests also under runc
delegating to an installed runc); an engine that `hpcbox info` reports unavailable is skipped with
its reason. Where an engine documents a case as impossible (``common.IMPOSSIBLE``), the test asserts
its clear error instead.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok, one_error

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian

INPUTS = Path(os.environ.get("HPCBOX_TEST_INPUTS", "/var/cache/hpcbox-test-inputs"))


@pytest.fixture(params=common.RUN_ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture(params=common.RUN_ENGINES_AND_RUNTIMES)
def engine_rt(request) -> str:
    return request.param


def test_cat_debian_version_from_the_image(run_store, engine):
    before = run_store.ids()
    proc = ok(run_store("run", *common.engine_args(run_store, engine), "--rm", "debian", "cat",
                        "/etc/debian_version"))
    assert proc.stdout.startswith("12.")
    assert run_store.ids() == before  # --rm removed the container it created


def test_exit_codes_and_signals_pass_through(run_store, shared_debian, engine_rt):
    rt = common.engine_args(run_store, engine_rt)
    assert run_store("run", *rt, shared_debian, "sh", "-c", "exit 42").returncode == 42
    assert run_store("run", *rt, shared_debian, "false").returncode == 1
    if engine_rt != "runc/runc":  # under runc the program is pid 1 of its namespace: immune to its own kill
        assert run_store("run", *rt, shared_debian, "sh", "-c", "kill -KILL $$").returncode == 128 + 9
        assert run_store("run", *rt, shared_debian, "/no/such/program").returncode == 127
    killed = run_store("run", *rt, shared_debian, "sh", "-c", 'sh -c "kill -TERM \\$\\$"')
    assert killed.returncode == 128 + 15


def _wait_for(stream, text: str, timeout: float = 60) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {text!r}; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096).decode(errors="replace")
            assert chunk, f"stream closed before {text!r}; got {seen!r}"
            seen += chunk
    return seen


def test_sigterm_to_hpcbox_reaches_the_container(run_store, shared_debian, engine):
    script = 'trap "echo got-TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done'
    proc = subprocess.Popen([sys.executable, "-m", "hpcbox", "--home", str(run_store.home), "run",
                             *common.engine_args(run_store, engine), shared_debian, "bash", "-c", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=hpcbox_env())
    try:
        _wait_for(proc.stdout, "ready")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"got-TERM" in out, err
    assert proc.returncode == 3, err


def test_rm_also_on_failure_and_name(run_store, engine):
    args = common.engine_args(run_store, engine)
    before = run_store.ids()
    proc = run_store("run", *args, "--rm", "--name", "short-lived", "busybox", "sh", "-c", "echo hi; exit 9")
    assert run_store.ids() == before
    if common.impossible(engine, "static"):
        common.assert_impossible(proc, engine, "static")
        return
    assert proc.returncode == 9 and proc.stdout == "hi\n"
    ok(run_store("run", *args, "--name", "kept", "busybox", "busybox", "true"))
    try:  # the store is shared: a failure here must not leave "kept" to the next engine's run
        assert "kept" in {n for c in json.loads(ok(run_store("ps", "--json")).stdout) for n in c["names"]}
        error = one_error(run_store("run", "--name", "other", "kept", "true"))
        assert "--name is for a new container" in error
    finally:
        ok(run_store("rm", "-f", "kept"))


def test_volumes_workdir_env_file(run_store, shared_debian, tmp_path, engine_rt):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "in.txt").write_text("from the host\n")
    env_file = tmp_path / "vars.env"
    env_file.write_text("# a comment\nGREETING=hello world\nEMPTY=\n")
    os.chmod(tmp_path, 0o755)
    script = ('set -e; pwd; echo "$GREETING|$EMPTY|$FROM_E"; cat /ro/in.txt; echo written > out.txt; '
              'if echo x > /ro/x 2>/dev/null; then echo ro-writable; else echo ro-refused; fi')
    args = common.engine_args(run_store, engine_rt)
    proc = ok(run_store("run", *args, "-v", f"{rw}:/work", "-v", f"{ro}:/ro:ro", "-w", "/work",
                        "--env-file", str(env_file), "-e", "FROM_E=e", shared_debian, "bash", "-c", script))
    assert proc.stdout.splitlines() == ["/work", "hello world||e", "from the host", "ro-refused"]
    assert (rw / "out.txt").read_text() == "written\n"
    assert not (ro / "x").exists()


def test_missing_volume_source_is_a_clear_error(run_store, shared_debian, tmp_path, engine):
    args = common.engine_args(run_store, engine)
    error = one_error(run_store("run", *args, "-v", f"{tmp_path / 'nope'}:/x", shared_debian, "true"), 2)
    assert "does not exist on this host" in error and "-v/--volume" in error


def test_user_with_the_callers_uid(run_store, shared_debian, engine):
    args = common.engine_args(run_store, engine)
    uid, gid = os.getuid(), os.getgid()
    proc = ok(run_store("run", *args, "-u", f"{uid}:{gid}", shared_debian, "sh", "-c",
                        "id -u; id -g; id -un"))
    import pwd

    name = pwd.getpwuid(uid).pw_name
    assert proc.stdout.splitlines() == [str(uid), str(gid), name]
    # the caller was added to the container's own (writable) /etc/passwd
    [rootfs] = [Path(c["rootfs"]) for c in json.loads(ok(run_store("ps", "--json")).stdout)
                if shared_debian in c["names"]]
    if uid != 0:
        assert f"{name}:x:{uid}:{gid}:" in (rootfs / "etc/passwd").read_text()
    proc = ok(run_store("run", *args, "-u", name, shared_debian, "id", "-u"))
    assert proc.stdout.strip() == str(uid)
    error = one_error(run_store("run", *args, "-u", "no-such-user", shared_debian, "true"), 2)
    assert "not in the container's /etc/passwd" in error


def test_image_config_and_entrypoint(run_store, shared_debian, engine):
    args = common.engine_args(run_store, engine)
    # busybox's image config has Cmd ["/bin/sh"]: stdin is the script
    proc = run_store("run", *args, "--rm", "busybox", input="echo from-cmd\n")
    if common.impossible(engine, "static"):
        common.assert_impossible(proc, engine, "static")
    else:
        assert ok(proc).stdout == "from-cmd\n"
    proc = ok(run_store("run", *args, "--entrypoint", "/bin/echo", shared_debian, "a", "b"))
    assert proc.stdout == "a b\n"
    proc = ok(run_store("run", *args, "--entrypoint", "", shared_debian, "echo", "c"))
    assert proc.stdout == "c\n"
    proc = run_store("run", *args, "--hostname", "box7", "-e", "HOME", shared_debian, "sh", "-c",
                     "hostname; echo $PATH", env=hpcbox_env(HOME="/from/host"))
    if common.impossible(engine, "hostname"):
        common.assert_impossible(proc, engine, "hostname")
    else:
        assert ok(proc).stdout.splitlines()[0] == "box7"


def test_net_none_has_only_lo_up(run_store, engine_rt):
    args = common.engine_args(run_store, engine_rt)
    proc = run_store("run", *args, "--rm", "--net=none", "busybox", "busybox", "ip", "-o", "link")
    if common.impossible(engine_rt, "net-none"):
        common.assert_impossible(proc, engine_rt, "net-none")
        return
    if common.impossible(engine_rt, "static"):
        common.assert_impossible(proc, engine_rt, "static")
        return
    lines = ok(proc).stdout.splitlines()
    assert len(lines) == 1 and ": lo: " in lines[0] and ",UP" in lines[0], proc.stdout
    host = ok(run_store("run", *args, "--rm", "busybox", "busybox", "ip", "-o", "link")).stdout.splitlines()
    assert len(host) == len(list(Path("/sys/class/net").iterdir()))  # host network: all interfaces


def test_interactive_session_on_a_pty(run_store, shared_debian, engine):
    args = common.engine_args(run_store, engine)
    pid, master = pty.fork()
    if pid == 0:  # the child: stdin/stdout/stderr are the pty's slave, our controlling terminal
        os.environ["HPCBOX_DEBUG"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "hpcbox", "--home", str(run_store.home), "run", *args,
                                  "-it", shared_debian, "bash", "--norc", "-i"])
    try:
        transcript = ""

        def expect(text: str) -> None:
            nonlocal transcript
            deadline = time.monotonic() + 60
            while text not in transcript:
                assert time.monotonic() < deadline, f"no {text!r} in {transcript!r}"
                ready, _, _ = select.select([master], [], [], 1)
                if ready:
                    try:
                        transcript += os.read(master, 4096).decode(errors="replace")
                    except OSError:  # EIO: the child closed the terminal
                        break

        os.write(master, b"echo answer=$((6*7))\n")
        expect("answer=42")
        os.write(master, b"tty; [ -t 0 ] && echo stdin-is-a-tty; echo TERM=$TERM\n")
        expect("stdin-is-a-tty")
        expect("TERM=xterm")
        assert "/dev/pts/" in transcript
        os.write(master, b"exit 5\n")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 5, transcript
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)


def test_dpkg_install_as_root_in_the_container(run_store, tmp_path, engine):
    args = common.engine_args(run_store, engine)
    deb = INPUTS / "hello.deb"
    if not deb.is_file():
        pytest.skip(f"{deb} is missing; run `sudo scripts/prepare-test-inputs` first")
    proc = run_store("run", *args, "--rm", "-v", f"{deb}:/tmp/hello.deb:ro", "debian", "sh", "-c",
                     "id -u; dpkg -i /tmp/hello.deb >/dev/null && dpkg -s hello | grep Status; hello")
    if common.impossible(engine, "root"):
        common.assert_impossible(proc, engine, "root")
        return
    assert ok(proc).stdout.splitlines() == ["0", "Status: install ok installed", "Hello, world!"], proc.stderr


def _mirror_reachable(run_store, shared_debian):
    import socket

    script = "cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; true"
    sources = ok(run_store("run", shared_debian, "sh", "-c", script)).stdout
    urls = [word for line in sources.splitlines() if line.startswith("deb ")
            for word in line.split() if word.startswith("http")]
    if not urls:
        return None
    parts = urlsplit(urls[0])
    try:
        socket.create_connection((parts.hostname, parts.port or 80), timeout=5).close()
    except OSError:
        return None
    return urls[0]


def test_apt_get_install_where_the_mirror_is_reachable(run_store, shared_debian, engine):
    args = common.engine_args(run_store, engine)
    if _mirror_reachable(run_store, shared_debian) is None:
        pytest.skip("the image's Debian mirror (its /etc/apt/sources.list) is not reachable from here")
    # apt drops to the _apt user for downloads; with a single-id user namespace that uid does not exist
    apt = "apt-get -o APT::Sandbox::User=root -qq"
    script = f"set -e; {apt} update; {apt} install -y --no-install-recommends hello >/dev/null; hello"
    proc = run_store("run", *args, "--rm", "debian", "sh", "-c", script)
    if common.impossible(engine, "root"):
        common.assert_impossible(proc, engine, "root")
        return
    assert ok(proc).stdout.strip().endswith("Hello, world!"), proc.stderr


def test_setup_execmode_and_engines_not_built(run_store):
    cid = run_store.create("busybox")
    try:
        proc = ok(run_store("setup", "--execmode=P1", cid))
        assert "P1" in proc.stdout and "ptrace" in proc.stdout
        info = json.loads(ok(run_store("info", "--json")).stdout)
        proc = run_store("run", cid, "busybox", "true")
        if info["engines"]["ptrace"]["available"]:
            assert proc.returncode == 0
        else:
            error = one_error(proc)
            assert "engine ptrace is not available: " in error
            assert info["engines"]["ptrace"]["reason"] in error
        ok(run_store("setup", "--execmode=R1", cid))
        ok(run_store("run", cid, "busybox", "true"))
        ps = {c["id"]: c for c in json.loads(ok(run_store("ps", "--json")).stdout)}
        assert ps[cid]["execmode"] == "R1" and ps[cid]["settings"]["engine"] == "runc"
        error = one_error(run_store("setup", "--execmode=Z9", cid), 2)
        assert "unknown execution mode" in error
    finally:
        ok(run_store("rm", "-f", cid))


def test_info_lists_every_engine_and_auto(run_store):
    info = json.loads(ok(run_store("info", "--json")).stdout)
    assert set(info["engines"]) >= {"runc", "ptrace", "preload", "singularity"}
    for entry in info["engines"].values():
        assert isinstance(entry["available"], bool) and entry["reason"]
    working = [name for name in ("runc", "preload", "ptrace") if info["engines"][name]["available"]]
    assert info["auto"] == (working[0] if working else None)
    text = ok(run_store("info")).stdout
    assert "auto picks: " in text
