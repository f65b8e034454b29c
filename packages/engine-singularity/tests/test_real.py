"""The engine against a real apptainer/singularity: one on PATH (or HPCBOX_SINGULARITY), else Debian
unstable's Apptainer run unprivileged from the userland that scripts/prepare-test-inputs makes
(Debian 12 has no Apptainer; see tests/apptainer-in-userland).

Skipped when neither is there, with the reason shown by `pytest -ra`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from singularity_standin import run_bundle

from hpcbox_engine_singularity import SingularityEngine, UnavailableError, find_binary


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

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ["sh", "echo", "cat", "id", "pwd", "env", "true", "false", "touch", "hostname", "kill", "sleep",
           "ls", "mount", "grep"]


IN_USERLAND = Path(__file__).with_name("apptainer-in-userland")


def _userland() -> Path:
    inputs = os.environ.get("HPCBOX_TEST_INPUTS") or "/var/cache/hpcbox-test-inputs"
    return Path(os.environ.get("HPCBOX_APPTAINER_USERLAND") or Path(inputs) / "apptainer-sid")


@pytest.fixture(scope="module")
def real_engine():
    try:
        binary = find_binary()
    except UnavailableError as error:
        if not (_userland() / "usr/bin/apptainer").exists():
            pytest.skip(f"no real apptainer/singularity here ({error}) and no Apptainer userland at "
                        f"{_userland()} (run: sudo scripts/prepare-test-inputs)")
        binary = str(IN_USERLAND)
    engine = SingularityEngine(binary)
    ok, reason = engine.available()
    if not ok:
        pytest.skip(f"the real binary is not usable: {reason}")
    return engine


@pytest.fixture
def busybox_root(tmp_path):
    """A tiny rootfs from the host's static busybox: only /bin, /etc/passwd and /root, so the engine
    must create every mount point Apptainer needs in a writable sandbox."""
    out = subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True, check=False).stdout \
        if shutil.which("file") else ""
    if not os.path.exists(BUSYBOX) or (out and "statically linked" not in out and "static-pie" not in out):
        pytest.skip("needs a static busybox (Debian: apt-get install busybox-static)")
    root = tmp_path / "rootfs"
    for sub in ("bin", "root"):
        (root / sub).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    return root


def _bundle(tmp_path, root, args, mounts=(), extra=None, **process):
    config = {"ociVersion": "1.0.2",
              "process": {"args": args, "env": ["PATH=/bin", "GREETING=hi there", "HOME=/root"], "cwd": "/",
                          "user": {"uid": os.getuid(), "gid": os.getgid()}, **process},
              "root": {"path": str(root)}, "mounts": list(mounts), **(extra or {})}
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def _quiet(result):
    """Apptainer's own output on stderr: the engine prepares the sandbox so that there is none."""
    return [line for line in result.err.splitlines() if any(w in line for w in ("WARNING", "ERROR", "FATAL"))]


def test_real_exit_status_env_and_home(real_engine, busybox_root, tmp_path):
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", "echo $GREETING; echo $HOME; exit 3"])
    result = run_bundle(real_engine, bundle)
    assert result.code == 3, result
    assert result.out == "hi there\n/root\n"
    assert _quiet(result) == []


def test_real_environment_is_only_the_configs(real_engine, busybox_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HOST_SECRET", "leak")
    monkeypatch.setenv("APPTAINERENV_STRAY", "leak")
    result = run_bundle(real_engine, _bundle(tmp_path, busybox_root, ["env"]))
    assert result.code == 0, result
    assert "GREETING=hi there" in result.out.splitlines()
    assert "leak" not in result.out


def test_real_stdin_and_cwd(real_engine, busybox_root, tmp_path):
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", "pwd; cat"], cwd="/srv/app")
    result = run_bundle(real_engine, bundle, stdin_text="piped\n")
    assert result.code == 0, result
    assert result.out == "/srv/app\npiped\n"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_real_signal_death(real_engine, busybox_root, tmp_path, sig):
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", f"kill -{int(sig)} $$"])
    result = run_bundle(real_engine, bundle)
    assert result.code == 128 + sig, result


def test_real_binds(real_engine, busybox_root, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from host\n")
    out = tmp_path / "out"
    out.mkdir()
    mounts = [{"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind", "ro"]},
              {"destination": "/results", "type": "bind", "source": str(out), "options": ["rbind", "rw"]},
              {"destination": "/proc", "type": "proc", "source": "proc"}]
    script = "cat /data/in.txt; touch /data/new || echo refused; echo made > /results/r.txt"
    result = run_bundle(real_engine, _bundle(tmp_path, busybox_root, ["sh", "-c", script], mounts))
    assert result.code == 0, result
    assert result.out == "from host\nrefused\n"
    assert not (shared / "new").exists()
    assert (out / "r.txt").read_text() == "made\n"


def test_real_home_volume(real_engine, busybox_root, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".profile").write_text("mine\n")
    mounts = [{"destination": "/home/me", "type": "bind", "source": str(home)}]
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", "echo $HOME; cat ~/.profile"], mounts,
                     env=["PATH=/bin", "HOME=/home/me"])
    result = run_bundle(real_engine, bundle)
    assert result.code == 0, result
    assert result.out == "/home/me\nmine\n"


def test_real_tmpfs_becomes_scratch(real_engine, busybox_root, tmp_path):
    mounts = [{"destination": "/scratch", "type": "tmpfs", "source": "tmpfs"}]
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", "touch /scratch/a && ls /scratch"], mounts)
    result = run_bundle(real_engine, bundle)
    assert result.code == 0, result
    assert result.out == "a\n"
    assert not (busybox_root / "scratch" / "a").exists()


def test_real_hostname_and_readonly_root(real_engine, busybox_root, tmp_path):
    run_bundle(real_engine, _bundle(tmp_path, busybox_root, ["true"]))  # let the engine add mount points once
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", "hostname; touch /x || echo ro"],
                     extra={"hostname": "box1", "root": {"path": str(busybox_root), "readonly": True}})
    result = run_bundle(real_engine, bundle)
    assert result.code == 0, result
    assert result.out == "box1\nro\n"


def test_real_no_network(real_engine, busybox_root, tmp_path):
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", "grep -c : /proc/net/dev"],
                     extra={"annotations": {"org.hpcbox.net": "none"}})
    result = run_bundle(real_engine, bundle)
    assert result.code == 0, result
    assert result.out == "1\n"  # only lo


def test_real_fakeroot(real_engine, busybox_root, tmp_path):
    if os.getuid() == 0:
        pytest.skip("the caller is root already")
    allowed, why = real_engine.fakeroot_allowed(real_engine.installation())
    if not allowed:
        pytest.skip(f"fakeroot is not available here: {why}")
    result = run_bundle(real_engine, _bundle(tmp_path, busybox_root, ["sh", "-c", "id -u; touch /etc/made"],
                                             user={"uid": 0, "gid": 0}))
    assert result.code == 0, result
    assert result.out == "0\n"
    assert (busybox_root / "etc" / "made").exists()


FORWARD = textwrap.dedent("""
    import sys
    from hpcbox_engine_singularity import SingularityEngine
    sys.exit(SingularityEngine(sys.argv[1]).run(sys.argv[2]))
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_real_signal_forwarding(real_engine, busybox_root, tmp_path, sig):
    script = f"trap 'echo got; exit 42' {sig.name[3:]}; echo ready; while :; do sleep 1; done"
    bundle = _bundle(tmp_path, busybox_root, ["sh", "-c", script])
    argv = default_signals([sys.executable, "-c", FORWARD, real_engine.installation().path, str(bundle)])
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
