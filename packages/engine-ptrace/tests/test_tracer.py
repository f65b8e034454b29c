"""The tracer executable (hpcbox-ptrace, as built into the package) on real programs, as the user that
runs the suite: a static busybox in a small rootfs, and the Debian 12 minbase rootfs tarball of
/var/cache/hpcbox-test-inputs (dynamic programs through the guest's loader) when it is there.

Over 500 lines: one file per executable under test, so the rootfs fixtures and probes are built once
for all of its modes; the owners-filter cases need the same fixtures."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from hpcbox_engine_ptrace import engine, tracer_path

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
INPUTS = Path(os.environ.get("HPCBOX_TEST_INPUTS", "/var/cache/hpcbox-test-inputs"))
DEBIAN = INPUTS / "debian12-minbase.tar.gz"
TRACER = str(tracer_path())
_OK, _WHY = engine.available()

pytestmark = pytest.mark.skipif(not _OK, reason=f"the ptrace engine is not available here: {_WHY}")


def _is_static(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF" and b"ld-linux" not in f.read(4096)
    except OSError:
        return False


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    if not _is_static(BUSYBOX):
        pytest.skip("needs a static busybox (Debian: busybox-static)")
    root = tmp_path_factory.mktemp("rootfs")
    for d in ("bin", "etc", "usr/lib", "tmp", "proc", "dev"):
        (root / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    for applet in ("sh", "cat", "ls", "test", "true", "kill", "echo", "readlink", "pwd", "id", "mknod",
                   "chown", "stat", "hostname", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc/hostname").write_text("guest-hostname\n")
    (root / "abs").symlink_to("/etc/hostname")  # absolute: must stay inside the rootfs
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib/marker").write_text("in usr/lib\n")
    (root / "script").write_text("#!/bin/sh\necho \"script $0 $1\"\n")
    (root / "script").chmod(0o755)
    return root


@pytest.fixture(scope="module")
def debian(tmp_path_factory):
    if not DEBIAN.is_file():
        pytest.skip(f"{DEBIAN} is missing; run `sudo scripts/prepare-test-inputs`")
    root = tmp_path_factory.mktemp("debian")
    with tarfile.open(DEBIAN) as tar:
        members = [m for m in tar.getmembers() if not (m.isdev() or m.isfifo())]
        tar.extractall(root, members=members)  # our own test input
    return root


def run(rootfs, *argv, binds=(), opts=(), **kwargs):
    cmd = [TRACER, "--rootfs", str(rootfs), "--bind", "/proc", "/proc", "--bind", "/dev", "/dev", *opts]
    for guest, host in binds:
        cmd += ["--bind", guest, str(host)]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run([*cmd, "--", *argv], capture_output=True, text=True, timeout=120, check=False,
                          cwd="/", env=env, **kwargs)


def test_open_stat_and_listing_see_the_rootfs(rootfs):
    proc = run(rootfs, "/bin/sh", "-c", "cat /etc/hostname; ls /; test -e /usr/lib/marker && echo has-marker")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "guest-hostname" and lines[-1] == "has-marker"
    assert lines[1:-1] == sorted(os.listdir(rootfs))


def test_symlinks_and_dotdot_stay_inside(rootfs):
    script = "cat /abs; cat /../../../etc/hostname; cat /lib/marker; cd /usr && cat ../lib/marker"
    proc = run(rootfs, "/bin/sh", "-c", script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "guest-hostname\n" * 2 + "in usr/lib\n" * 2


def test_pipelines_bindings_and_reverse_translation(rootfs, tmp_path):
    (tmp_path / "f").write_text("from the host\n")
    script = ("cat /data/f | cat | cat; cd /data && PWD=/x pwd; readlink /proc/self/cwd; "
              "readlink /proc/self/exe; cd /usr/lib && PWD=/x pwd; cat /dev/stdin")
    proc = run(rootfs, "/bin/sh", "-c", script, binds=[("/data", tmp_path)], input="via stdin\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["from the host", "/data", "/data", "/bin/busybox", "/usr/lib",
                                        "via stdin"]


def test_scripts_errors_exit_codes_and_signals(rootfs):
    assert run(rootfs, "/script", "a").stdout == "script /script a\n"
    proc = run(rootfs, "/bin/cat", "/nope/x")
    assert proc.returncode == 1 and "No such file or directory" in proc.stderr
    assert run(rootfs, "/bin/sh", "-c", "exit 7").returncode == 7
    assert run(rootfs, "/bin/sh", "-c", "kill -9 $$").returncode == 128 + 9
    proc = run(rootfs, "/no/such")
    assert proc.returncode == 127 and "/no/such" in proc.stderr
    proc = run(rootfs, "nosuch")
    assert proc.returncode == 127 and "not found in the container's PATH" in proc.stderr
    assert run(rootfs, "/etc/hostname").returncode == 126


def test_root_emulation_and_hostname(rootfs):
    script = ("id -u; id -g; echo x > /tmp/f; chown 0:0 /tmp/f && echo chowned; "
              "mknod /tmp/n c 1 3 && echo made; hostname")
    proc = run(rootfs, "/bin/sh", "-c", script, opts=["--uid", "0", "--gid", "0", "--hostname", "box"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["0", "0", "chowned", "made", "box"]
    assert (rootfs / "tmp/n").is_file()  # a regular file stands in for the device
    assert (rootfs / "tmp/f").stat().st_uid == os.getuid()  # the host's owner is unchanged
    proc = run(rootfs, "/bin/sh", "-c", "id -u")
    assert proc.stdout.strip() == str(os.getuid())  # no --uid: no emulation


@pytest.mark.parametrize("mode", [[], ["--no-seccomp"]])
def test_chroot_inside_moves_the_root_of_the_process_and_its_children(rootfs, mode):
    sub = rootfs / "srv/sub"
    if not sub.exists():
        for d in ("bin", "etc", "data"):
            (sub / d).mkdir(parents=True)
        shutil.copy2(BUSYBOX, sub / "bin/busybox")
        for applet in ("sh", "cat", "ls", "pwd", "readlink"):
            (sub / "bin" / applet).symlink_to("busybox")
        (sub / "etc/marker").write_text("sub\n")
        (sub / "abs").symlink_to("/etc/marker")
        (rootfs / "bin/chroot").symlink_to("busybox")
    inner = "cat /etc/marker /abs; cd /..; pwd; ls /; ls /data"
    script = f"chroot /srv/sub /bin/sh -c '{inner}'; echo rc=$?; cat /etc/hostname"
    root = ["--uid", "0", "--gid", "0"]
    binds = [("/srv/sub/data", rootfs / "usr/lib")]  # a binding below the new root is inside it
    proc = run(rootfs, "/bin/sh", "-c", script, opts=[*root, *mode], binds=binds)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["sub", "sub", "/", "abs", "bin", "data", "etc", "marker", "rc=0",
                                        "guest-hostname"], proc.stderr
    # not root: EPERM, as without CAP_SYS_CHROOT
    proc = run(rootfs, "/bin/sh", "-c", "chroot /srv/sub /bin/true", opts=mode)
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr


def test_ownership_record_chown_then_stat(rootfs, tmp_path):
    """Under root emulation chown goes into the ownership record (--owners), which the stat family
    shows in this and later runs; the caller's own files show as root; a device node is a regular
    file shown as the device; an emulated ordinary user gets EPERM for a device, as from Linux."""
    owners = tmp_path / "ownership"
    root = ["--uid", "0", "--gid", "0", "--owners", str(owners)]
    script = ("echo x > /tmp/o1; echo y > /tmp/o2; chown 12:34 /tmp/o1 && stat -c '%u %g' /tmp/o1 /tmp/o2; "
              "mknod /tmp/dev c 1 3 && stat -c '%F %t %T' /tmp/dev")
    proc = run(rootfs, "/bin/sh", "-c", script, opts=root)
    assert proc.stdout.splitlines() == ["12 34", "0 0", "character special file 1 3"], proc.stderr
    assert (rootfs / "tmp/dev").is_file() and (rootfs / "tmp/o1").stat().st_uid == os.getuid()
    proc = run(rootfs, "/bin/sh", "-c", "chown :5 /tmp/o1; ls -ln /tmp/o1", opts=root)  # a later run
    assert proc.stdout.split()[2:4] == ["12", "5"], proc.stderr
    proc = run(rootfs, "/bin/sh", "-c", "mknod /tmp/dev2 c 1 3", opts=["--uid", "1000", "--gid", "1000"])
    assert proc.returncode != 0 and not (rootfs / "tmp/dev2").exists()


STAT_FORMS_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
static void show(const char *form, long rc, const struct stat *st) {
    if (rc < 0) { perror(form); printf("%s failed\n", form); return; }
    printf("%s %u %u\n", form, (unsigned)st->st_uid, (unsigned)st->st_gid);
}
static void show_x(const char *form, long rc, const struct statx *st) {
    if (rc < 0) { perror(form); printf("%s failed\n", form); return; }
    printf("%s %u %u\n", form, (unsigned)st->stx_uid, (unsigned)st->stx_gid);
}
int main(void) {
    struct stat st; struct statx sx;
    int dir, file, lnk;
    mkdir("/tmp/forms", 0755);
    close(open("/tmp/forms/f", O_CREAT | O_WRONLY, 0644));
    unlink("/tmp/forms/l"); symlink("f", "/tmp/forms/l");
    close(open("/tmp/forms/mine", O_CREAT | O_WRONLY, 0644));
    if (chown("/tmp/forms/f", 12, 34) < 0 || lchown("/tmp/forms/l", 56, 78) < 0) {
        perror("chown"); return 1;
    }
    dir = open("/tmp/forms", O_RDONLY | O_DIRECTORY);
    file = open("/tmp/forms/f", O_RDONLY);
    lnk = open("/tmp/forms/l", O_PATH | O_NOFOLLOW);
    if (dir < 0 || file < 0 || lnk < 0) { perror("open"); return 1; }
#ifdef SYS_stat
    show("stat", syscall(SYS_stat, "/tmp/forms/f", &st), &st);
    show("lstat", syscall(SYS_lstat, "/tmp/forms/l", &st), &st);
#endif
    show("fstat", syscall(SYS_fstat, file, &st), &st);
    show("fstatat-dirfd", syscall(SYS_newfstatat, dir, "f", &st, 0), &st);
    show("fstatat-dirfd-nofollow", syscall(SYS_newfstatat, dir, "l", &st, AT_SYMLINK_NOFOLLOW), &st);
    show("fstatat-dirfd-follow", syscall(SYS_newfstatat, dir, "l", &st, 0), &st);
    show("fstatat-empty", syscall(SYS_newfstatat, file, "", &st, AT_EMPTY_PATH), &st);
    show("fstatat-cwd", syscall(SYS_newfstatat, AT_FDCWD, "/tmp/forms/f", &st, 0), &st);
    show_x("statx", syscall(SYS_statx, AT_FDCWD, "/tmp/forms/f", 0, STATX_BASIC_STATS, &sx), &sx);
    show_x("statx-dirfd", syscall(SYS_statx, dir, "f", 0, STATX_BASIC_STATS, &sx), &sx);
    show_x("statx-empty", syscall(SYS_statx, file, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx), &sx);
    show_x("statx-dirfd-mine", syscall(SYS_statx, dir, "mine", 0, STATX_BASIC_STATS, &sx), &sx);
    show("fstat-dir", syscall(SYS_fstat, dir, &st), &st);
    /* errors stay the kernel's */
    printf("ebadf %d\n", syscall(SYS_fstat, 999, &st) < 0 ? errno : 0);
    return 0;
}
"""


@pytest.mark.parametrize("mode", [[], ["--no-seccomp"], ["--trace-dirfd"]])
def test_every_stat_form_shows_the_recorded_owners(rootfs, tmp_path, mode):
    """After chown under root emulation, stat by path, by descriptor (fstat, AT_EMPTY_PATH), and by a
    directory descriptor and a name (newfstatat, statx) all show what was set; the caller's own
    files show as root; a bad descriptor is still the kernel's EBADF."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    source = tmp_path / "forms.c"
    source.write_text(STAT_FORMS_C)
    exe = tmp_path / "forms"
    built = subprocess.run([cc, "-static", "-O1", "-o", str(exe), str(source)], check=False)
    if built.returncode:
        pytest.skip("cannot link a static C program here (libc6-dev's libc.a)")
    shutil.copy2(exe, rootfs / "bin/stat-forms")
    owners = tmp_path / "ownership"
    proc = run(rootfs, "/bin/stat-forms", opts=["--uid", "0", "--gid", "0", "--owners", str(owners), *mode])
    assert proc.returncode == 0, proc.stderr
    answers = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in proc.stdout.splitlines()
               if not line.startswith("ebadf ")}
    expected = {"fstat": "12 34", "fstatat-dirfd": "12 34", "fstatat-dirfd-nofollow": "56 78",
                "fstatat-dirfd-follow": "12 34", "fstatat-empty": "12 34", "fstatat-cwd": "12 34",
                "statx": "12 34", "statx-dirfd": "12 34", "statx-empty": "12 34", "statx-dirfd-mine": "0 0",
                "fstat-dir": "0 0"}
    if "stat" in answers:  # x86_64 has stat and lstat
        expected.update({"stat": "12 34", "lstat": "56 78"})
    assert answers == expected, proc.stdout + proc.stderr
    assert f"ebadf {errno.EBADF}" in proc.stdout.splitlines(), proc.stdout


OWNERS_LATER_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static int fd, dir, go[2];
static void show(const char *who) {
    struct stat st; struct statx sx;
    if (syscall(SYS_fstat, fd, &st) < 0) { perror("fstat"); exit(1); }
    printf("%s-fstat %u %u\n", who, (unsigned)st.st_uid, (unsigned)st.st_gid);
    if (syscall(SYS_newfstatat, dir, "f", &st, AT_SYMLINK_NOFOLLOW) < 0) { perror("fstatat"); exit(1); }
    printf("%s-dirfd %u %u\n", who, (unsigned)st.st_uid, (unsigned)st.st_gid);
    if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) < 0) { perror("statx"); exit(1); }
    printf("%s-statx %u %u\n", who, (unsigned)sx.stx_uid, (unsigned)sx.stx_gid);
    fflush(stdout);
}
static void *thread_main(void *arg) {
    char c;
    (void)arg;
    if (read(go[0], &c, 1) != 1) exit(1);
    show("thread");
    return NULL;
}
int main(int argc, char **argv) {
    int wake[2];
    pid_t sibling, chowner;
    pthread_t th;
    char c;
    mkdir("/tmp/later", 0755);
    close(open("/tmp/later/f", O_CREAT | O_WRONLY, 0644));
    fd = open("/tmp/later/f", O_RDONLY);
    dir = open("/tmp/later", O_RDONLY | O_DIRECTORY);
    if (fd < 0 || dir < 0 || pipe(wake) < 0 || pipe(go) < 0) { perror("setup"); return 1; }
    show("before");
    if (argc > 1 && strcmp(argv[1], "nochown") == 0)
        return 0;
    /* a thread and a process that exist before the chown and wait in read(), which never stops */
    if (pthread_create(&th, NULL, thread_main, NULL) != 0) return 1;
    sibling = fork();
    if (sibling == 0) {
        if (read(wake[0], &c, 1) != 1) _exit(1);
        show("sibling");
        _exit(0);
    }
    chowner = fork();
    if (chowner == 0)
        _exit(chown("/tmp/later/f", 12, 34) < 0);
    if (waitpid(chowner, NULL, 0) != chowner) return 1;
    show("parent");
    if (write(wake[1], "g", 1) != 1 || waitpid(sibling, NULL, 0) != sibling) return 1;
    if (write(go[1], "g", 1) != 1 || pthread_join(th, NULL) != 0) return 1;
    return 0;
}
"""


def _stop_counts(stderr):
    return {line.split()[1]: int(line.split()[2]) for line in stderr.splitlines()
            if line.startswith("hpcbox-ptrace:   ")}


@pytest.mark.parametrize("mode", [[], ["--trace-dirfd"], ["--no-seccomp"], ["--exact-owners"]])
def test_stat_by_descriptor_stops_only_once_the_record_holds_something(rootfs, tmp_path, mode):
    """Under root emulation with seccomp, stat by descriptor (fstat, fstatat by a real dirfd, statx of
    AT_EMPTY_PATH) runs untraced while the ownership record is empty; a chown in one process then
    makes every process show the record by descriptor: itself, one forked before the chown, a thread
    and a process that waited in read() meanwhile, with descriptors opened before the chown; a later
    run starts with the filter. Without seccomp, and with --exact-owners, every call stops from the start."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    source = tmp_path / "later.c"
    source.write_text(OWNERS_LATER_C)
    exe = tmp_path / "later"
    built = subprocess.run([cc, "-static", "-O1", "-pthread", "-o", str(exe), str(source)], check=False)
    if built.returncode:
        pytest.skip("cannot link a static C program here (libc6-dev's libc.a)")
    shutil.copy2(exe, rootfs / "bin/owners-later")
    shutil.rmtree(rootfs / "tmp/later", ignore_errors=True)
    owners = tmp_path / "ownership"
    opts = ["--uid", "0", "--gid", "0", "--owners", str(owners), "--stats", *mode]

    proc = run(rootfs, "/bin/owners-later", "nochown", opts=opts)
    assert proc.returncode == 0, proc.stderr
    counts = _stop_counts(proc.stderr)
    ours = os.getuid(), os.getgid()
    before = proc.stdout.splitlines()
    if mode in (["--no-seccomp"], ["--exact-owners"]):  # every call stops, answered as the container shows it
        assert before == ["before-fstat 0 0", "before-dirfd 0 0", "before-statx 0 0"], proc.stdout
    else:  # nothing recorded: the kernel answers by descriptor (the caller's ids), no stop
        assert "fstat" not in counts, proc.stderr
        assert f"before-fstat {ours[0]} {ours[1]}" in before, proc.stdout
    if not mode:  # (--trace-dirfd stops on the other two anyway)
        assert "newfstatat" not in counts and "statx" not in counts, proc.stderr

    proc = run(rootfs, "/bin/owners-later", opts=opts)
    assert proc.returncode == 0, proc.stderr
    answers = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in proc.stdout.splitlines()
               if not line.startswith("before-")}
    assert answers == {f"{who}-{form}": "12 34" for who in ("parent", "sibling", "thread")
                       for form in ("fstat", "dirfd", "statx")}, proc.stdout + proc.stderr

    proc = run(rootfs, "/bin/owners-later", "nochown", opts=opts)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["before-fstat 12 34", "before-dirfd 12 34", "before-statx 12 34"], \
        proc.stdout + proc.stderr


def test_readonly_bindings_and_root(rootfs, tmp_path):
    (tmp_path / "in").write_text("x")
    cmd = [TRACER, "--rootfs", str(rootfs), "--bind-ro", "/ro", str(tmp_path), "--readonly", "--",
           "/bin/sh", "-c", "cat /ro/in; echo y > /ro/new || echo refused; echo z > /tmp/new || echo refused"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    assert proc.stdout.splitlines() == ["xrefused", "refused"] or proc.stdout.splitlines() == ["x", "refused",
                                                                                                 "refused"]
    assert "Read-only file system" in proc.stderr
    assert not (tmp_path / "new").exists() and not (rootfs / "tmp/new").exists()


@pytest.mark.parametrize("mode", [[], ["--no-seccomp"], ["--trace-dirfd"]])
def test_dynamic_debian_programs_through_the_guests_loader(debian, mode):
    script = ('cat /etc/debian_version; readlink /proc/$$/exe; cat /proc/$$/comm; cd /usr/lib && /bin/pwd; '
              'find /etc/apt -maxdepth 1 | sort | head -2; bash -c \'echo "$0"\'')
    proc = run(debian, "sh", "-c", script, opts=mode)
    assert proc.returncode == 0, proc.stderr
    version = (debian / "etc/debian_version").read_text().strip()
    assert proc.stdout.splitlines() == [version, "/usr/bin/dash", "sh", "/usr/lib", "/etc/apt",
                                        "/etc/apt/apt.conf.d", "bash"]


@pytest.mark.parametrize("mode", [[], ["--no-seccomp"], ["--trace-dirfd"]])
def test_the_program_not_its_loader_in_proc_self(debian, mode):
    # exe followed (open, exec), cmdline and comm of a program started through the guest's loader;
    # ptrace by the program: EPERM and one line naming the engine that allows it
    script = (r"""[ "$(md5sum /proc/self/exe | cut -c1-32)" = "$(md5sum /usr/bin/md5sum | cut -c1-32)" ] """
              r"""&& echo same-file; """
              r"""tr '\0' '|' < /proc/self/cmdline; echo; cat /proc/self/comm; """
              r"""[ -n "$AGAIN" ] || AGAIN=1 exec /proc/self/exe -c 'echo "again $0"' x; """)
    proc = run(debian, "bash", "-c", script, opts=mode)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["same-file", "tr|\\0|||", "cat", "again x"], proc.stderr
    traceme = 'syscall({}, 0, 0, 0, 0) == -1 or die "traced"; print "$!\\n"'.format(
        {"x86_64": 101, "aarch64": 117}[os.uname().machine])
    proc = run(debian, "sh", "-c", f"perl -e '{traceme}'; perl -e '{traceme}'", opts=mode)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Operation not permitted"] * 2
    assert [line for line in proc.stderr.splitlines() if "debugger" in line] == [
        "hpcbox: a debugger cannot trace under the ptrace engine (hpcbox traces the container's processes "
        "itself); use --engine runc"]


RESTART_C = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile int alarms;
static void on_alarm(int sig) {  /* its frame lands where the tracer wrote the open's host path */
    char big[4096]; memset(big, 'x', sizeof big); alarms += sig == SIGALRM && big[9];
    close(open("/tmp/alarmed", O_CREAT | O_WRONLY, 0600));
}
int main(void) {
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm; sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    if (mkfifo("/tmp/fifo", 0600) < 0) { perror("mkfifo"); return 1; }
    pid_t c = fork();
    if (c == 0) {  /* the writer comes after the alarm interrupted the reader's open */
        while (access("/tmp/alarmed", F_OK) != 0) usleep(10000);
        int w = open("/tmp/fifo", O_WRONLY); if (w < 0) { perror("writer"); _exit(1); }
        write(w, "data\n", 5); _exit(0);
    }
    ualarm(100000, 0);
    int fd = open("/tmp/fifo", O_RDONLY);  /* blocks; SIGALRM runs the handler; the kernel restarts it */
    if (fd < 0) { perror("open after the signal"); return 1; }
    char buf[16] = {0}; if (read(fd, buf, sizeof buf - 1) < 0) return 1; waitpid(c, NULL, 0);
    printf("alarms=%d read=%s", alarms, buf);
    return 0;
}
"""


@pytest.mark.parametrize("mode", [[], ["--no-seccomp"]])
def test_a_syscall_restarted_after_a_signal_handler_keeps_its_path(rootfs, tmp_path, mode):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    (tmp_path / "restart.c").write_text(RESTART_C)
    exe = tmp_path / "restart"
    built = subprocess.run([cc, "-static", "-O1", "-o", str(exe), str(tmp_path / "restart.c")], check=False)
    if built.returncode:
        pytest.skip("cannot link a static C program here (libc6-dev's libc.a)")
    shutil.copy2(exe, rootfs / "bin/restart")
    for leftover in ("tmp/fifo", "tmp/alarmed"):
        if os.path.lexists(rootfs / leftover):
            os.unlink(rootfs / leftover)
    proc = run(rootfs, "/bin/restart", opts=mode)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "alarms=1 read=data\n"


def test_stats_count_the_stops(debian):
    proc = run(debian, "cat", "/etc/debian_version", opts=["--stats"])
    assert proc.returncode == 0
    counts = {line.split()[1]: int(line.split()[2]) for line in proc.stderr.splitlines()
              if line.startswith("hpcbox-ptrace:   ")}
    assert counts["execve"] == 1 and counts["openat"] >= 2


def test_bad_usage_is_refused(tmp_path):
    proc = subprocess.run([TRACER, "--rootfs", str(tmp_path / "absent"), "--", "/bin/true"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 125 and "rootfs" in proc.stderr and "No such file" in proc.stderr
    proc = subprocess.run([TRACER], capture_output=True, text=True, check=False)
    assert proc.returncode == 125 and "usage:" in proc.stderr
    proc = subprocess.run([TRACER, "--rootfs", str(tmp_path), "--bind", "/x", str(tmp_path / "absent"),
                           "--", "true"], capture_output=True, text=True, check=False)
    assert proc.returncode == 125 and "binding /x" in proc.stderr
    assert subprocess.run([TRACER, "--probe"], check=False).returncode == 0


# A seccomp policy around the tracer that refuses the seccomp syscall itself, as some container
# runtimes' profiles do (or a kernel without seccomp filters): no filter can be installed.
NO_SECCOMP_C = r"""
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_seccomp, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof f / sizeof f[0], f};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) { perror("no-seccomp"); return 125; }
    execv(argv[1], argv + 1);
    perror("exec");
    return 126;
}
"""


@pytest.fixture(scope="module")
def no_seccomp(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    work = tmp_path_factory.mktemp("no-seccomp")
    (work / "no_seccomp.c").write_text(NO_SECCOMP_C)
    subprocess.run([cc, "-O1", "-o", str(work / "no_seccomp"), str(work / "no_seccomp.c")], check=True)
    return str(work / "no_seccomp")


def test_without_seccomp_filters_it_traces_every_syscall_instead(rootfs, no_seccomp):
    probe = subprocess.run([no_seccomp, TRACER, "--probe"], capture_output=True, text=True, check=False)
    assert probe.returncode == 0 and probe.stdout == "no-seccomp\n", probe.stderr
    plain = subprocess.run([TRACER, "--probe"], capture_output=True, text=True, check=False)
    assert plain.stdout == "seccomp\n"
    cmd = [no_seccomp, TRACER, "--rootfs", str(rootfs), "--bind", "/proc", "/proc", "--stats", "--",
           "/bin/sh", "-c", "cat /etc/hostname; cat /abs; cd /lib && pwd"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, cwd="/",
                          env={"PATH": "/bin", "HPCBOX_DEBUG": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["guest-hostname", "guest-hostname", "/lib"]
    assert "seccomp filters are not available here: tracing every system call" in proc.stderr
