"""What MPI ranks need from the builtin runner: the caller's pid and ipc namespaces when the config
lists none, and one user namespace for containers of one share-userns group."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import pytest

from hpcbox_engine_runc import _shared, engine
from hpcbox_engine_runc._bundle import ANNOTATION_SHARE_USERNS, parse_bundle
from hpcbox_engine_runc._engine import runner_argv

pytestmark = pytest.mark.usefixtures("need_userns")
NO_PID_IPC = [{"type": t} for t in ("uts", "mount", "user")]
ALL = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]


def _ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def test_runner_flags_follow_the_namespace_list(make_bundle):
    argv = runner_argv(parse_bundle(make_bundle(["true"], namespaces=NO_PID_IPC)))
    assert "--host-pid" in argv and "--host-ipc" in argv
    for namespaces in (ALL, None):  # no list at all: the runner's full set, as before
        argv = runner_argv(parse_bundle(make_bundle(["true"], namespaces=namespaces)))
        assert "--host-pid" not in argv and "--host-ipc" not in argv


def test_without_pid_and_ipc_namespaces_the_container_shares_the_callers(make_bundle, run):
    script = "for n in pid ipc user; do readlink /proc/self/ns/$n; done; echo $$"
    result = run(make_bundle(["sh", "-c", script], namespaces=NO_PID_IPC))
    assert result.code == 0, result
    pid_ns, ipc_ns, user_ns, pid = result.out.split()
    assert (pid_ns, ipc_ns) == (_ns("pid"), _ns("ipc"))
    assert user_ns != _ns("user")
    assert int(pid) > 2  # a host pid, not pid 2 of a namespace of its own

    isolated = run(make_bundle(["sh", "-c", script], namespaces=ALL)).out.split()
    assert isolated[0] != _ns("pid") and isolated[1] != _ns("ipc") and isolated[3] == "2"


def test_processes_left_behind_are_killed_without_a_pid_namespace(make_bundle, run):
    """No pid namespace teardown: the runner's init (a child subreaper) kills what the program left."""
    result = run(make_bundle(["sh", "-c", "sleep 300 & echo $!"], namespaces=NO_PID_IPC))
    assert result.code == 0, result
    orphan = int(result.out)
    try:
        with open(f"/proc/{orphan}/cmdline", "rb") as handle:
            alive = b"sleep" in handle.read()
    except OSError:
        alive = False
    assert not alive, f"sleep (pid {orphan}) outlived its container"


def _start_printing_userns(make_bundle, group):
    """A container that prints its user namespace and then waits for its stdin to close."""
    bundle = make_bundle(["sh", "-c", "readlink /proc/self/ns/user; cat >/dev/null"], namespaces=NO_PID_IPC,
                         annotations={ANNOTATION_SHARE_USERNS: group})
    container = engine.start(bundle, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    return container, container.process.stdout.readline().decode().strip()


def _group_path(key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return os.path.join("/dev/shm", f"hpcbox-{os.getuid()}", "userns", digest)


def test_containers_of_one_group_share_one_user_namespace(make_bundle, run):
    group = f"test-{os.getpid()}-{time.monotonic_ns()}"
    first, first_ns = _start_printing_userns(make_bundle, group)
    try:
        second, second_ns = _start_printing_userns(make_bundle, group)
        other, other_ns = _start_printing_userns(make_bundle, group + "-other")
        for container in (first, second, other):
            container.process.stdin.close()
            assert container.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.process.kill()
            first.wait()
    assert first_ns.startswith("user:[") and first_ns != _ns("user")
    assert second_ns == first_ns
    assert other_ns != first_ns
    if os.path.isdir("/dev/shm"):
        assert not os.path.exists(_group_path(group)), "the last member left the group directory behind"


def test_a_group_outlives_its_first_member(make_bundle):
    """Any living member will do: after the creator ended, a newcomer joins the namespace of the others."""
    group = f"test-{os.getpid()}-{time.monotonic_ns()}"
    first, first_ns = _start_printing_userns(make_bundle, group)
    second, second_ns = _start_printing_userns(make_bundle, group)
    first.process.stdin.close()
    assert first.wait(timeout=60) == 0
    third, third_ns = _start_printing_userns(make_bundle, group)
    for container in (second, third):
        container.process.stdin.close()
        assert container.wait(timeout=60) == 0
    assert first_ns == second_ns == third_ns


def test_stale_members_are_skipped_and_removed(tmp_path):
    group = _shared.Group("stale", base=str(tmp_path))
    try:
        dead = os.path.join(group.path, "999999999")
        with open(dead, "w", encoding="ascii") as handle:
            handle.write("1 1\n")
        me = os.path.join(group.path, str(os.getpid()))  # alive, but its recorded start time is wrong
        with open(me, "w", encoding="ascii") as handle:
            handle.write(f"1 {os.stat('/proc/self/ns/user').st_ino}\n")
        assert group.find() is None
        assert not os.path.exists(dead) and not os.path.exists(me)
        member = group.register(os.getpid())
        fd = group.find()
        assert fd is not None and os.fstat(fd).st_ino == os.stat("/proc/self/ns/user").st_ino
        os.close(fd)
    finally:
        group.release()
    _shared.leave(member)
    assert not os.path.exists(group.path)


def test_a_group_directory_of_another_mode_is_refused(tmp_path):
    top = tmp_path / f"hpcbox-{os.getuid()}"
    top.mkdir(mode=0o755)
    top.chmod(0o755)
    with pytest.raises(_shared.EngineError, match="not a private directory"):
        _shared.Group("x", base=str(tmp_path))
