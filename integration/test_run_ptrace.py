"""`hpcbox run --engine ptrace` with real programs on the Debian 12 and busybox images, as the calling
user (unprivileged in CI): the tracer translates every path, starts programs through the guest's
loader and #! interpreters, emulates root, and keeps exit codes and signals as they are natively."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok, one_error

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian
INPUTS = Path(os.environ.get("HPCBOX_TEST_INPUTS", "/var/cache/hpcbox-test-inputs"))
CC = shutil.which("cc") or shutil.which("gcc")
MUSL_GCC = shutil.which("musl-gcc")
PT = ("run", "--engine", "ptrace")


def _engine_available():
    try:
        from hpcbox_engine_ptrace import engine
    except ImportError as error:
        return False, f"hpcbox-engine-ptrace is not installed ({error})"
    return engine.available()


_OK, _WHY = _engine_available()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not _OK, reason=f"the ptrace engine is not available here: {_WHY}")]

THREADS_C = r"""
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
static int seen[8];
static void *work(void *arg) {
    long i = (long)arg; struct stat st; char cwd[256];
    for (int k = 0; k < 200; k++) {
        if (stat("/etc/debian_version", &st) == 0 && getcwd(cwd, sizeof cwd) && cwd[0] == '/') seen[i]++;
    }
    return NULL;
}
int main(void) {
    pthread_t t[8]; int total = 0;
    for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, work, (void *)i);
    for (int i = 0; i < 8; i++) { pthread_join(t[i], NULL); total += seen[i]; }
    printf("threads saw the guest %d times\n", total);
    return 0;
}
"""

FORK_C = r"""
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int sum = 0;
    for (int i = 0; i < 200; i++) {
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 1; }
        if (p == 0) { struct stat st; _exit(stat("/etc/debian_version", &st) == 0 ? i % 7 : 100); }
    }
    for (int i = 0; i < 200; i++) { int s; if (wait(&s) > 0 && WIFEXITED(s)) sum += WEXITSTATUS(s); }
    printf("sum %d\n", sum);
    return 0;
}
"""

WHOAMI_C = r"""
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char exe[512]; ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    FILE *f = fopen("/etc/debian_version", "r"); char v[64] = "none";
    if (f) { if (!fgets(v, sizeof v, f)) v[0] = 0; fclose(f); }
    printf("argv0=%s exe=%s args=%d debian=%s", argv[0], exe, argc, v);
    return 0;
}
"""


def _compile(cc: str, source: str, out: Path, *flags: str) -> Path:
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run([cc, "-O1", "-o", str(out), str(src), *flags], check=True)
    return out


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """Test programs built here, in a directory the container gets as /in."""
    if CC is None:
        pytest.skip("no C compiler (cc/gcc); install gcc")
    d = tmp_path_factory.mktemp("ptrace-programs")
    os.chmod(d, 0o755)
    _compile(CC, THREADS_C, d / "threads", "-pthread")
    _compile(CC, FORK_C, d / "fork200")
    _compile(CC, WHOAMI_C, d / "whoami-glibc")
    (d / "script.sh").write_text('#!/bin/sh -e\necho "script $0 $1"\n')
    (d / "env-script").write_text('#!/usr/bin/env bash\necho "bash $BASH_VERSINFO via env: $0"\n')
    for name in ("script.sh", "env-script"):
        (d / name).chmod(0o755)
    return d


def run(run_store, *args, **kwargs):
    return run_store(*PT, *args, **kwargs)


def test_coreutils_bash_and_pipelines(run_store, shared_debian):
    script = ('set -e; for i in 3 1 2; do echo $i; done | sort | tr "\\n" " "; echo; '
              'stat -c %s /etc/debian_version; readlink -f /lib/x86_64-linux-gnu/libc.so.6; '
              'cd /usr/lib && pwd && /bin/pwd && readlink /proc/self/cwd; '
              'cat /etc/os-release | grep -c "^ID=debian"; ls -d /usr/bin/ls; cat <(echo proc-subst)')
    proc = ok(run(run_store, shared_debian, "bash", "-c", script))
    lines = proc.stdout.splitlines()
    assert lines[0] == "1 2 3 "
    assert lines[2] == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert lines[3:6] == ["/usr/lib"] * 3
    assert lines[6:] == ["1", "/usr/bin/ls", "proc-subst"]


def test_find_and_tar_see_the_rootfs(run_store, shared_debian):
    rootfs = _rootfs(run_store, shared_debian)
    proc = ok(run(run_store, shared_debian, "sh", "-c", "find /usr/share/doc -maxdepth 1 | sort"))
    want = sorted(["/usr/share/doc", *(f"/usr/share/doc/{n}" for n in os.listdir(rootfs / "usr/share/doc"))])
    assert proc.stdout.splitlines() == want
    script = ("set -e; mkdir -p /tmp/tartest && cd /tmp/tartest; tar c -C /etc debian_version | tar x; "
              "cat debian_version; tar cf - /usr/share/doc 2>/dev/null | tar t | wc -l; "
              "cd / && rm -r /tmp/tartest")
    lines = ok(run(run_store, shared_debian, "sh", "-c", script)).stdout.splitlines()
    assert lines[0] == (rootfs / "etc/debian_version").read_text().strip()
    assert int(lines[1]) == len(list((rootfs / "usr/share/doc").rglob("*"))) + 1


def _rootfs(run_store, name: str) -> Path:
    containers = json.loads(ok(run_store("ps", "--json")).stdout)
    [rootfs] = [Path(c["rootfs"]) for c in containers if name in c["names"]]
    return rootfs


def test_threads_and_200_children(run_store, shared_debian, programs):
    proc = ok(run(run_store, "-v", f"{programs}:/in:ro", shared_debian, "/in/threads"))
    assert proc.stdout == "threads saw the guest 1600 times\n"
    proc = ok(run(run_store, "-v", f"{programs}:/in:ro", shared_debian, "/in/fork200"))
    assert proc.stdout == f"sum {sum(i % 7 for i in range(200))}\n"


def test_guest_loader_argv0_and_proc_self_exe(run_store, shared_debian, programs):
    proc = ok(run(run_store, "-v", f"{programs}:/in:ro", shared_debian, "bash", "-c",
                  "exec -a custom-name /in/whoami-glibc x y"))
    version = (_rootfs(run_store, shared_debian) / "etc/debian_version").read_text()
    assert proc.stdout == f"argv0=custom-name exe=/in/whoami-glibc args=3 debian={version}"
    proc = ok(run(run_store, shared_debian, "bash", "-c", 'readlink /proc/$$/exe; echo "$0"'))
    assert proc.stdout.splitlines() == ["/usr/bin/bash", "bash"]


def test_shebang_scripts(run_store, shared_debian, programs):
    proc = ok(run(run_store, "-v", f"{programs}:/in:ro", "-w", "/in", shared_debian, "sh", "-c",
                  "/in/script.sh one; ./script.sh two; ./env-script"))
    assert proc.stdout.splitlines() == ["script /in/script.sh one", "script ./script.sh two",
                                        "bash 5 via env: ./env-script"]


@pytest.mark.skipif(MUSL_GCC is None, reason="musl-gcc is not installed (Debian: musl-tools)")
def test_musl_binaries_static_and_through_the_guests_musl_loader(run_store, programs, tmp_path):
    _compile(MUSL_GCC, WHOAMI_C, tmp_path / "whoami-musl-static", "-static")
    _compile(MUSL_GCC, WHOAMI_C, tmp_path / "whoami-musl")
    loader = Path("/lib/ld-musl-x86_64.so.1")
    if not loader.exists():
        pytest.skip(f"musl's loader {loader} is missing (Debian: musl)")
    shutil.copy2(loader, tmp_path / "ld-musl")
    os.chmod(tmp_path, 0o755)
    cid = run_store.create("debian")
    try:
        proc = ok(run(run_store, "-v", f"{tmp_path}:/in:ro", cid, "/in/whoami-musl-static", "a"))
        want = "argv0=/in/whoami-musl-static exe=/in/whoami-musl-static args=2 debian=12."
        assert proc.stdout.startswith(want), proc.stdout
        # a dynamic musl program needs the guest's musl loader: install it there (as root), then run
        proc = ok(run(run_store, "-v", f"{tmp_path}:/in:ro", cid, "sh", "-c",
                      "install -m 755 /in/ld-musl /lib/ld-musl-x86_64.so.1 && cd /in && ./whoami-musl b c"))
        # musl's loader (1.2.3) names the program in argv[0] even when given --argv0
        assert proc.stdout.split(" ", 1)[0] in ("argv0=./whoami-musl", "argv0=/in/whoami-musl")
        assert proc.stdout.split(" ", 1)[1].startswith("exe=/in/whoami-musl args=3 debian=12."), proc.stdout
    finally:
        ok(run_store("rm", "-f", cid))


def test_static_busybox_image(run_store):
    proc = ok(run(run_store, "--rm", "busybox", "sh", "-c",
                  "echo $((6*7)); cd /etc && pwd; ls / | grep -c bin; readlink /proc/self/exe; id -u"))
    assert proc.stdout.splitlines() == ["42", "/etc", "1", "/bin/busybox", "0"]


def test_root_emulation(run_store):
    cid = run_store.create("debian")
    try:
        script = ("id; touch /f && chown 12:34 /f && chgrp 5 /f && echo chown-ok; "
                  "mknod /dev-null-copy c 1 3 && test -e /dev-null-copy && echo mknod-ok; "
                  "su -s /bin/sh nobody -c 'id -u; id -g'")
        proc = ok(run(run_store, cid, "sh", "-c", script))
        assert proc.stdout.splitlines() == ["uid=0(root) gid=0(root) groups=0(root)", "chown-ok", "mknod-ok",
                                            "65534", "65534"], proc.stderr
        uid = os.getuid()
        proc = ok(run(run_store, "-u", f"{uid}:{os.getgid()}", cid, "sh", "-c", "id -u; touch /g"))
        assert proc.stdout.strip() == str(uid)
    finally:
        ok(run_store("rm", "-f", cid))


def test_dpkg_install_with_root_emulation(run_store):
    deb = INPUTS / "hello.deb"
    if not deb.is_file():
        pytest.skip(f"{deb} is missing; run `sudo scripts/prepare-test-inputs` first")
    proc = ok(run(run_store, "--rm", "-v", f"{deb}:/tmp/hello.deb:ro", "debian", "sh", "-c",
                  "id -u; dpkg -i /tmp/hello.deb >/dev/null && dpkg -s hello | grep Status; hello"))
    assert proc.stdout.splitlines() == ["0", "Status: install ok installed", "Hello, world!"], proc.stderr


def test_apt_get_install_where_the_mirror_is_reachable(run_store, shared_debian):
    import socket
    from urllib.parse import urlsplit

    sources = ok(run(run_store, shared_debian, "sh", "-c",
                     "cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; true")).stdout
    urls = [w for line in sources.splitlines() if line.startswith("deb ") for w in line.split()
            if w.startswith("http")]
    try:
        if not urls:
            raise OSError("no http source")
        parts = urlsplit(urls[0])
        socket.create_connection((parts.hostname, parts.port or 80), timeout=5).close()
    except OSError:
        pytest.skip("the image's Debian mirror (its /etc/apt/sources.list) is not reachable from here")
    apt = "apt-get -qq"  # apt drops to _apt for downloads: emulated setresuid makes that work
    script = f"set -e; {apt} update; {apt} install -y --no-install-recommends hello >/dev/null; hello"
    proc = ok(run(run_store, "--rm", "debian", "sh", "-c", script))
    assert proc.stdout.strip().endswith("Hello, world!"), proc.stderr


def test_exit_codes_and_signals(run_store, shared_debian):
    assert run(run_store, shared_debian, "sh", "-c", "exit 42").returncode == 42
    assert run(run_store, shared_debian, "false").returncode == 1
    assert run(run_store, shared_debian, "sh", "-c", "kill -KILL $$").returncode == 128 + 9
    assert run(run_store, shared_debian, "sh", "-c", 'sh -c "kill -TERM \\$\\$"').returncode == 128 + 15
    assert run(run_store, shared_debian, "/no/such/program").returncode == 127
    assert run(run_store, shared_debian, "/etc/debian_version").returncode == 126
    # job control: a stopped child stays stopped until SIGCONT, and its status is reported as such
    script = ('sleep 30 & p=$!; kill -STOP $p; '
              'until cut -d" " -f3 /proc/$p/stat | grep -q "[Tt]"; do sleep 0.05; done; '
              'echo stopped; kill -CONT $p; kill $p; wait $p; echo $?')
    proc = ok(run(run_store, shared_debian, "bash", "-c", script))
    assert proc.stdout.split() == ["stopped", "143"]


def test_sigterm_to_hpcbox_reaches_the_program(run_store, shared_debian):
    script = 'trap "echo got-TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done'
    proc = subprocess.Popen([sys.executable, "-m", "hpcbox", "--home", str(run_store.home), *PT,
                             shared_debian, "bash", "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=hpcbox_env())
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out == b"got-TERM\n", err
    assert proc.returncode == 3, err


def _processes_with(marker: str):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_killing_the_engine_leaves_no_process(run_store, shared_debian):
    seconds = 3000 + os.getpid() % 1000  # a command line of our own to look for
    tag = f"hpcbox-kill-test-{os.getpid()}"  # sh's $0, also in the tracer's command line
    script = f"sleep {seconds} & sleep {seconds} & echo ready; wait"
    proc = subprocess.Popen([sys.executable, "-m", "hpcbox", "--home", str(run_store.home), *PT,
                             shared_debian, "sh", "-c", script, tag], stdout=subprocess.PIPE,
                            env=hpcbox_env())

    def leftovers():  # neither the sleeps, nor sh, nor the tracer
        return sorted(set(_processes_with(f"sleep\0{seconds}\0")) | set(_processes_with(tag)))

    try:
        assert proc.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 60
        while len(_processes_with(f"sleep\0{seconds}\0")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the two sleeps exec a moment after "ready"
        assert len(_processes_with(f"sleep\0{seconds}\0")) == 2
        assert len(leftovers()) >= 4  # and sh and the tracer carry the tag
    finally:
        proc.kill()
        proc.wait()
    # Every process gets its SIGKILL at once, but exits in its own time: wait for all of them.
    deadline = time.monotonic() + 30
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers() == []


def test_background_processes_end_with_the_program(run_store, shared_debian):
    seconds = 4000 + os.getpid() % 1000
    proc = ok(run(run_store, shared_debian, "sh", "-c", f"sleep {seconds} & echo started"))
    assert proc.stdout == "started\n"
    # killed when the program ended, but a killed process leaves /proc in its own time: poll
    deadline = time.monotonic() + 30
    while _processes_with(f"sleep\0{seconds}\0") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(f"sleep\0{seconds}\0") == []


def test_volumes_workdir_readonly_hostname(run_store, shared_debian, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "in.txt").write_text("from the host\n")
    (rw / "link").symlink_to(rw / "in-rw")
    os.chmod(tmp_path, 0o755)
    script = ("set -e; pwd; cat /ro/in.txt; echo written > out.txt; readlink /work/link; "
              "if echo x > /ro/x 2>/dev/null; then echo ro-writable; else echo ro-refused; fi; hostname")
    proc = ok(run(run_store, "-v", f"{rw}:/work", "-v", f"{ro}:/ro:ro", "-w", "/work", "--hostname", "box7",
                  shared_debian, "bash", "-c", script))
    # a link in a volume reads back as stored, as under a mount (runc shows the same host text)
    assert proc.stdout.splitlines() == ["/work", "from the host", str(rw / "in-rw"), "ro-refused", "box7"]
    assert (rw / "out.txt").read_text() == "written\n"
    assert not (ro / "x").exists()


def test_execmode_p2_traces_every_syscall(run_store):
    cid = run_store.create("debian")
    try:
        ok(run_store("setup", "--execmode=P2", cid))
        proc = ok(run_store("run", cid, "sh", "-c", "cat /etc/debian_version; cd /usr && pwd; id -u"))
        lines = proc.stdout.splitlines()
        assert lines[0].startswith("12.") and lines[1:] == ["/usr", "0"]
        config = json.loads((Path(run_store.home) / "containers" / cid / "config.json").read_text())
        assert config["annotations"]["org.hpcbox.ptrace.seccomp"] == "off"
    finally:
        ok(run_store("rm", "-f", cid))


def test_net_none_is_refused_with_a_fix(run_store, shared_debian):
    error = one_error(run(run_store, "--net=none", shared_debian, "true"))
    assert "--net=none" in error and "--engine runc" in error
