"""The preload engine on real images, as the calling user (unprivileged in CI): Debian 11 (glibc 2.31,
older than the host's), 12 and 13, and a musl image. Real programs (bash, coreutils, find, tar, perl,
python3 where the image has it) and a probe program (hpcbox_testing.images.PROBE_C) for the libc calls
no shell makes: posix_spawn, system(), dlopen, execvp through PATH, chdir with relative paths,
/proc/self/exe, and an exec after clearenv().
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from hpcbox_testing import images
from test_cli_common import ok
from test_run_common import RunStore

DEBIANS = {"debian11": "11.", "debian12": "12.", "debian13": "13."}


@pytest.fixture(scope="session")
def preload_store(tmp_path_factory, registry_http, test_images) -> RunStore:
    """A store with one container per image (named like the image), or a skip when the preload engine
    is not installed or an image's inputs are missing."""
    try:
        from hpcbox_engine_preload import engine
    except ImportError:
        pytest.skip("hpcbox-engine-preload is not installed")
    available, reason = engine.available()
    if not available:
        pytest.skip(f"the preload engine is not available: {reason}")
    store = RunStore(tmp_path_factory.mktemp("preload-home") / "home")
    for image in (*DEBIANS, "musl"):
        try:
            pushed = registry_http.push(image, f"hpcbox/preload-{image}", "1")
        except images.MissingInputError:
            continue
        ok(store("pull", "-q", pushed.ref))
        ok(store("tag", pushed.ref, image))
        store.create(image, image)
    return store


def need(store: RunStore, image: str) -> None:
    names = {n for c in json.loads(ok(store("ps", "--json")).stdout) for n in c["names"]}
    if image not in names:
        pytest.skip(f"the {image} test image could not be built (missing input: see prepare-test-inputs)")


def preload(store: RunStore, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return store("run", "--engine", "preload", *args, **kwargs)


@pytest.fixture(scope="session")
def probe_dir(tmp_path_factory) -> Path:
    """PROBE_C built with the host's gcc so that it also runs on glibc 2.31, and libprobe.so."""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed; it builds the probe program")
    out = tmp_path_factory.mktemp("probe")
    (out / "probe.c").write_text(images.PROBE_C)
    (out / "libprobe.c").write_text(images.PROBE_LIB_C)
    subprocess.run([gcc, "-O2", "-DPROBE_OLD_GLIBC", "-nostartfiles", "-o", str(out / "probe"),
                    str(out / "probe.c"), "-Wl,--no-as-needed", "-l:libdl.so.2"], check=True)
    subprocess.run([gcc, "-O2", "-shared", "-fPIC", "-nostdlib", "-o", str(out / "libprobe.so"),
                    str(out / "libprobe.c")], check=True)
    out.chmod(0o755)
    return out


@pytest.mark.parametrize("image", list(DEBIANS))
def test_bash_coreutils_symlinks_and_relative_paths(preload_store, image):
    need(preload_store, image)
    script = r"""set -e
cat /etc/debian_version
cd /usr/share && pwd && ls -d common-licenses
d=$(mktemp -d /tmp/t.XXXXXX); cd "$d"
mkdir -p a/b && echo hi > a/b/f
ln -s a/b/f rel && ln -s "$d/a/b/f" abs && ln -s /etc/debian_version version
cat rel abs; readlink abs; realpath rel | sed "s|$d|D|"; [ "$(cat version)" = "$(cat /etc/debian_version)" ]
mv a/b/f a/g && ls a && rm -r a && ls
cd / && rm -r "$d" && [ ! -e "$d" ] && echo gone
"""
    lines = ok(preload(preload_store, image, "bash", "-c", script)).stdout.splitlines()
    assert lines[0].startswith(DEBIANS[image])
    assert lines[1:] == ["/usr/share", "common-licenses", "hi", "hi", lines[5], "D/a/b/f", "b", "g",
                         "abs", "rel", "version", "gone"]
    assert lines[5].startswith("/tmp/t.") and lines[5].endswith("/a/b/f")  # readlink: the guest path


MKNOD = r"""cd /tmp
mknod dev-$$ c 1 3 2>/dev/null || echo refused; [ -e dev-$$ ] && stat -c '%F %t %T' dev-$$; rm -f dev-$$
mknod fifo-$$ p && stat -c %F fifo-$$ && rm fifo-$$
"""


@pytest.mark.parametrize("image", list(DEBIANS))
def test_mknod_as_root_and_as_an_ordinary_user(preload_store, image):
    """Root (emulated): a device is a stand-in file shown as the device, also for Debian 11's
    programs, which call glibc's old __xmknod; an ordinary user: EPERM and no file, as Linux. A FIFO
    is a real one for both."""
    need(preload_store, image)
    as_root = ok(preload(preload_store, image, "sh", "-c", MKNOD)).stdout
    assert as_root.splitlines() == ["character special file 1 3", "fifo"]
    as_user = ok(preload(preload_store, "--user", "1000:1000", image, "sh", "-c", MKNOD)).stdout
    assert as_user.splitlines() == ["refused", "fifo"]


@pytest.mark.parametrize("image", list(DEBIANS))
def test_find_and_tar_see_the_rootfs(preload_store, image):
    need(preload_store, image)
    [rootfs] = [Path(c["rootfs"]) for c in json.loads(ok(preload_store("ps", "--json")).stdout)
                if image in c["names"]]
    script = r"""set -e
find /usr/share/common-licenses -type f | sort
echo --
d=$(mktemp -d); tar -C /usr/share -cf - common-licenses | tar -C "$d" -xf -
diff -r /usr/share/common-licenses "$d/common-licenses" && echo same
tar -C "$d" -czf /tmp/lic.tgz common-licenses && tar -tzf /tmp/lic.tgz | grep -c /GPL-3$
rm -r "$d" /tmp/lic.tgz
"""
    out = ok(preload(preload_store, image, "bash", "-c", script)).stdout
    listed, _, rest = out.partition("--\n")
    want = sorted("/" + str(p.relative_to(rootfs)) for p in (rootfs / "usr/share/common-licenses").rglob("*")
                  if p.is_file() and not p.is_symlink())
    assert listed.split() == want
    assert rest.split() == ["same", "1"]


@pytest.mark.parametrize("image", list(DEBIANS))
def test_probe_spawn_system_dlopen_execvp_and_exe(preload_store, probe_dir, image):
    need(preload_store, image)
    script = r"""
P=/opt/probe/probe
$P argv one two
$P exe
$P spawn ls -d /etc
$P system 'echo from-system $0; exit 3'
$P dlopen /opt/probe/libprobe.so probe_answer
cd /opt && probe/probe dlopen ./probe/libprobe.so probe_answer
$P chdir /usr/share common-licenses/GPL-3 | head -2
$P realpath /usr/share/../share/common-licenses/../common-licenses
$P execvp env PATH=/usr/bin:/bin sh -c 'echo via-execvp $0'
$P clearenv /bin/cat /etc/debian_version
printf '#!/bin/sh\necho script "$0" "$1"\n' > /tmp/s.sh && chmod +x /tmp/s.sh && /tmp/s.sh arg
env -i /tmp/s.sh cleared
$P popen 'echo one; echo two; exit 4'
LD_LIBRARY_PATH=/nonexistent:/opt/probe $P dlopen libprobe.so probe_answer
"""
    proc = ok(preload(preload_store, "-v", f"{probe_dir}:/opt/probe:ro", image, "bash", "-c", script))
    lines = proc.stdout.splitlines()
    assert lines[:3] == ["/opt/probe/probe", "argv", "one"] and lines[3] == "two"
    assert lines[4] == "/opt/probe/probe"  # /proc/self/exe is the program, not the loader that ran it
    assert lines[5:7] == ["/etc", "status 0"]
    assert lines[7:9] == ["from-system sh", "status 3"]
    assert lines[9:11] == ["probe_answer() = 42"] * 2
    assert lines[11] == "/usr/share" and "GNU GENERAL PUBLIC LICENSE" in lines[12]
    assert lines[13:15] == ["/usr/share/common-licenses", "via-execvp sh"]
    assert lines[15].startswith(DEBIANS[image])  # the configuration came back after clearenv()
    assert lines[16:18] == ["script /tmp/s.sh arg", "script /tmp/s.sh cleared"], proc.stderr
    assert lines[18:21] == ["popen: one", "popen: two", "status 4"], proc.stderr
    assert lines[21:] == ["probe_answer() = 42"], proc.stderr  # the guest LD_LIBRARY_PATH, translated


@pytest.mark.parametrize("image", list(DEBIANS))
def test_ldd_and_the_loader_run_directly(preload_store, image):
    need(preload_store, image)
    containers = json.loads(ok(preload_store("ps", "--json")).stdout)
    [rootfs] = [c["rootfs"] for c in containers if image in c["names"]]
    script = r"""set -e
ldd /bin/ls
echo --
/lib64/ld-linux-x86-64.so.2 /bin/true && echo true-ok
/lib64/ld-linux-x86-64.so.2 /bin/sh -c 'echo "$0"; cat /etc/debian_version'
cd /usr && /lib64/ld-linux-x86-64.so.2 bin/readlink /proc/self/exe
/lib64/ld-linux-x86-64.so.2 --library-path /nonexistent --list /bin/true | grep -c libc.so.6
LD_TRACE_LOADED_OBJECTS=1 /bin/true | grep -c libc.so.6
"""
    proc = ok(preload(preload_store, image, "bash", "-c", script))
    listing, _, rest = proc.stdout.partition("--\n")
    assert rootfs not in proc.stdout and "hpcbox" not in proc.stdout, proc.stdout
    libs = {}
    for line in listing.splitlines():
        name, arrow, where = line.strip().partition(" => ")
        if arrow:
            libs[name] = where.split(" (")[0]
    assert "libc.so.6" in libs and "libselinux.so.1" in libs, listing  # ls's NEEDED in Debian
    for guest in libs.values():  # the container's files, named by their guest paths
        assert guest.startswith("/") and Path(rootfs, guest.lstrip("/")).exists(), listing
    assert "ld-linux-x86-64.so.2" in listing
    lines = rest.splitlines()
    assert lines[:2] == ["true-ok", "/bin/sh"] and lines[2].startswith(DEBIANS[image]), proc.stderr
    assert lines[3:] == ["/usr/bin/readlink", "1", "1"], proc.stderr


# glob, fts, ftw and nftw open directories inside libc (not through the wrapped functions): the
# library walks with its own wrapped calls. This program prints what each reports for a tree, with the
# tree's path as "R"; the same program run natively on the same tree (its host path) is the reference.
WALKER_C = r"""
/* Prints what glob, fts, ftw and nftw report for a tree, with the tree's path replaced by "R". */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <fts.h>
#endif

#if defined(__GLIBC__) && defined(WALKER_OLD_GLIBC)
__asm__(".symver __libc_start_main,__libc_start_main@GLIBC_2.2.5");
int main(int argc, char **argv);
__asm__(".text\n.globl _start\n.type _start,@function\n_start:\n"
        "  xor %ebp,%ebp\n  mov %rdx,%r9\n  pop %rsi\n  mov %rsp,%rdx\n  and $-16,%rsp\n"
        "  push %rax\n  push %rsp\n  xor %r8d,%r8d\n  xor %ecx,%ecx\n  lea main(%rip),%rdi\n"
        "  call __libc_start_main@PLT\n  hlt\n");
#endif

static const char *root;

static void show(const char *what, const char *path, const struct stat *st, int type, int level)
{
    size_t n = strlen(root);
    char cwd[PATH_MAX] = "";
    const char *base;

    if (getcwd(cwd, sizeof(cwd)) == NULL)
        strcpy(cwd, "?");
    base = strrchr(cwd, '/');
    printf("%s %d %d R%s %lld %s\n", what, type, level, strncmp(path, root, n) == 0 ? path + n : path,
           st && S_ISREG(st->st_mode) ? (long long)st->st_size : -1LL,
           strcmp(what, "fts") == 0 ? "-" : base ? base + 1 : cwd); /* fts: this one never chdirs */
}

static int skip_named(const char *path)
{
    const char *b = strrchr(path, '/');
    return strcmp(b ? b + 1 : path, "skip") == 0;
}

static int on_nftw(const char *path, const struct stat *st, int type, struct FTW *f)
{
    show("nftw", path, st, type, f->level);
#ifdef FTW_ACTIONRETVAL
    if (getenv("ACTION") && skip_named(path))
        return FTW_SKIP_SUBTREE;
#endif
    return 0;
}

static int on_ftw(const char *path, const struct stat *st, int type)
{
    show("ftw", path, st, type, -1);
    return 0;
}

#ifdef __GLIBC__
static int by_name(const FTSENT **a, const FTSENT **b)
{
    return strcmp((*a)->fts_name, (*b)->fts_name);
}

static int walk_fts(char *dir, int options)
{
    char *args[] = {dir, NULL};
    FTS *fts = fts_open(args, options, by_name);
    FTSENT *e;
    int n = 0;

    if (!fts)
        return perror("fts_open"), 1;
    while ((e = fts_read(fts))) {
        show("fts", e->fts_path, e->fts_statp, e->fts_info, e->fts_level);
        printf("  name %s\n", e->fts_name);
        if (e->fts_info == FTS_D && skip_named(e->fts_path))
            fts_set(fts, e, FTS_SKIP);
        if (e->fts_level == 0 && e->fts_info == FTS_D) {
            for (FTSENT *c = fts_children(fts, 0); c; c = c->fts_link)
                printf("  child %s %d\n", c->fts_name, c->fts_info);
        }
        n++;
    }
    printf("fts end errno=%d entries=%d\n", errno, n);
    return fts_close(fts);
}
#endif

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    root = argv[2];
    if (strcmp(argv[1], "glob") == 0) {
        for (int i = 3; i < argc; i++) {
            glob_t g;
            char pattern[PATH_MAX];
            int rc;

            snprintf(pattern, sizeof(pattern), "%s%s", root, argv[i]);
            rc = glob(pattern, GLOB_MARK | GLOB_NOCHECK, NULL, &g);
            printf("glob %s rc=%d\n", argv[i], rc);
            for (size_t k = 0; rc == 0 && k < g.gl_pathc; k++)
                printf("  R%s\n", g.gl_pathv[k] + strlen(root));
            if (rc == 0)
                globfree(&g);
        }
        return 0;
    }
    if (strcmp(argv[1], "ftw") == 0)
        return ftw(root, on_ftw, 8) != 0;
    if (strcmp(argv[1], "nftw") == 0) {
        int flags = 0;
        for (int i = 3; i < argc; i++) {
            if (strcmp(argv[i], "phys") == 0) flags |= FTW_PHYS;
            if (strcmp(argv[i], "depth") == 0) flags |= FTW_DEPTH;
            if (strcmp(argv[i], "chdir") == 0) flags |= FTW_CHDIR;
#ifdef FTW_ACTIONRETVAL
            if (strcmp(argv[i], "action") == 0) flags |= FTW_ACTIONRETVAL, setenv("ACTION", "1", 1);
#endif
        }
        return nftw(root, on_nftw, 8, flags) != 0;
    }
#ifdef __GLIBC__
    if (strcmp(argv[1], "fts") == 0)
        return walk_fts(argv[2], FTS_PHYSICAL);
    if (strcmp(argv[1], "fts-logical") == 0)
        return walk_fts(argv[2], FTS_LOGICAL);
    if (strcmp(argv[1], "fts-comfollow") == 0)
        return walk_fts(argv[2], FTS_PHYSICAL | FTS_COMFOLLOW);
#endif
    return 2;
}
"""

WALKS = (["glob", "/*/f*", "/l/*", "/*/", "/nomatch*", "/a/b/f?", "/l/../ff"], ["ftw"], ["nftw"],
         ["nftw", "phys"], ["nftw", "phys", "depth"], ["nftw", "chdir"], ["nftw", "chdir", "depth"],
         ["nftw", "action"], ["nftw", "action", "depth", "phys"], ["fts"], ["fts-logical"], ["fts-comfollow"])


@pytest.fixture(scope="session")
def walker_dir(tmp_path_factory) -> Path:
    """WALKER_C built with the host's gcc (old symbol versions, its own _start: runs on glibc 2.31) and,
    when musl-gcc is installed, for musl."""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed; it builds the walker program")
    out = tmp_path_factory.mktemp("walker")
    (out / "walker.c").write_text(WALKER_C)
    subprocess.run([gcc, "-O2", "-DWALKER_OLD_GLIBC", "-nostartfiles", "-o", str(out / "walker"),
                    str(out / "walker.c")], check=True)
    # the same with 64-bit file offsets: glob64, ftw64, nftw64 and fts64_* (glibc >= 2.23)
    subprocess.run([gcc, "-O2", "-DWALKER_OLD_GLIBC", "-D_FILE_OFFSET_BITS=64", "-nostartfiles", "-o",
                    str(out / "walker64"), str(out / "walker.c")], check=True)
    if shutil.which("musl-gcc"):
        subprocess.run(["musl-gcc", "-O2", "-o", str(out / "walker-musl"), str(out / "walker.c")], check=True)
    out.chmod(0o755)
    return out


def make_tree(tree: Path) -> None:
    """Directories, files, an empty and an unreadable directory, relative symlinks (a live one to a
    directory, a dangling one) and a directory named "skip" (the walker skips its subtree where the
    API can)."""
    shutil.rmtree(tree, ignore_errors=True)
    for d in ("a/b", "skip/x", "empty", "locked"):
        (tree / d).mkdir(parents=True)
    (tree / "a/f1").write_text("hi\n")
    (tree / "a/b/f2").write_text("hello\n")
    (tree / "skip/x/f").write_text("1\n")
    (tree / "ff").write_text("z\n")
    (tree / "l").symlink_to("a")
    (tree / "dangling").symlink_to("nowhere")
    (tree / "locked").chmod(0)


def walks_natively(rootfs: Path, program: Path, tree: Path, walks) -> str:
    """The walks run natively on the host path of the tree, with the container's own libc (its loader
    run directly), so that both sides run the same glob/ftw code where the library does not walk."""
    musl = rootfs / "lib/ld-musl-x86_64.so.1"
    if musl.exists():
        start = [str(musl)]
    else:
        libdirs = [str(rootfs / d) for d in ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu")]
        start = [str(rootfs / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"), "--inhibit-cache",
                 "--library-path", ":".join(libdirs)]
    out = []
    for walk in walks:
        proc = subprocess.run([*start, str(program), walk[0], str(tree), *walk[1:]], capture_output=True,
                              text=True, cwd="/", check=False)
        out.append(f"== {' '.join(walk)}\n{proc.stdout}rc {proc.returncode}\n")
    return "".join(out)


def walks_script(program: str, tree: str, walks) -> str:
    return "".join(f"echo '== {' '.join(w)}'; {shlex.join([program, w[0], tree, *w[1:]])}; echo rc $?\n"
                   for w in walks)


@pytest.mark.parametrize(("image", "program"), [*((d, w) for d in DEBIANS for w in ("walker", "walker64")),
                                                ("musl", "walker-musl")])
def test_glob_fts_ftw_nftw_report_guest_paths(preload_store, walker_dir, image, program):
    need(preload_store, image)
    containers = json.loads(ok(preload_store("ps", "--json")).stdout)
    [rootfs] = [Path(c["rootfs"]) for c in containers if image in c["names"]]
    tree = rootfs / "tmp/tree"
    if not (walker_dir / program).exists():
        pytest.skip("musl-gcc is not installed")
    # musl has no fts, and no FTW_CHDIR/FTW_ACTIONRETVAL of its own to compare with
    musl_walks = (["nftw"], ["nftw", "phys"], ["nftw", "phys", "depth"])
    walks = WALKS if image != "musl" else [w for w in WALKS if w[0] in ("glob", "ftw") or w in musl_walks]
    make_tree(tree)
    try:
        want = walks_natively(rootfs, walker_dir / program, tree, walks)
        shell = "bash" if image != "musl" else "/opt/walker/" + program
        if image == "musl":  # no dynamic shell in the musl image: one run per walk
            got = []
            for w in walks:
                proc = preload(preload_store, "-v", f"{walker_dir}:/opt/walker:ro", "-w", "/", image,
                               shell, w[0], "/tmp/tree", *w[1:])
                got.append(f"== {' '.join(w)}\n{proc.stdout}rc {proc.returncode}\n")
            got = "".join(got)
        else:
            script = walks_script("/opt/walker/" + program, "/tmp/tree", walks)
            got = ok(preload(preload_store, "-v", f"{walker_dir}:/opt/walker:ro", "-w", "/", image, shell,
                             "-c", script)).stdout
    finally:
        (tree / "locked").chmod(0o755)
    assert "R/a/b/f2 6" in want and "R/l/f1" in want  # the reference walked the tree
    assert got.splitlines() == want.splitlines()


@pytest.mark.parametrize("image", list(DEBIANS))
def test_interpreters_perl_and_python(preload_store, image):
    need(preload_store, image)
    script = r"""perl -MPOSIX -e 'print POSIX::floor(7.5), " ", (-d "/usr/share" ? "dir" : "none"), "\n"'
perl -e 'system("echo", "perl-system") == 0 or die; exec("sh", "-c", "echo perl-exec")'
if command -v python3 >/dev/null; then
  python3 -c 'import os, subprocess; print(os.getcwd(), subprocess.check_output(["echo", "py"]).decode())'
else echo no-python; fi
"""
    lines = ok(preload(preload_store, "-w", "/usr", image, "sh", "-c", script)).stdout.splitlines()
    assert lines[:3] == ["7 dir", "perl-system", "perl-exec"]
    assert lines[3] in ("no-python", "/usr py"), lines


@pytest.mark.parametrize("image", list(DEBIANS))
def test_a_static_program_inside_runs_under_the_ptrace_tracer(preload_store, image):
    need(preload_store, image)
    script = ("/opt/busybox sh -c 'pwd; id -u; head -1 /etc/debian_version >/dev/null && echo read'; "
              "echo status=$?")
    proc = preload(preload_store, "-v", f"{images.HOST_BUSYBOX}:/opt/busybox:ro", "-w", "/etc", image, "bash",
                   "-c", script)
    assert proc.stdout.splitlines() == ["/etc", "0", "read", "status=0"], proc.stderr


def test_musl_image(preload_store):
    need(preload_store, "musl")
    run = [*("run", "--engine", "preload", "musl")]
    probe = ["/usr/bin/probe"]
    assert ok(preload_store(*run, *probe, "argv", "x")).stdout.splitlines() == ["/usr/bin/probe", "argv", "x"]
    assert ok(preload_store(*run, "probe", "exe")).stdout == "/usr/bin/probe\n"  # found through PATH
    assert ok(preload_store(*run, "probe", "dlopen", "/usr/lib/libprobe.so", "probe_answer")).stdout == (
        "probe_answer() = 42\n")
    assert ok(preload_store(*run, "probe", "spawn", "probe", "argv")).stdout.splitlines() == [
        "probe", "argv", "status 0"]
    assert ok(preload_store(*run, "probe", "execvp", "probe-script", "y")).stdout.splitlines() == [
        "/usr/bin/probe", "argv", "/usr/bin/probe-script", "y"]
    assert ok(preload_store(*run, "probe", "chdir", "/etc", "passwd")).stdout.startswith("/etc\nroot:x:0:0:")
    # the loader run directly: the program translated; --list maps the loaded paths back to the guest
    loader = "/lib/ld-musl-x86_64.so.1"
    direct = ok(preload_store(*run, "probe", "execvp", loader, "/usr/bin/probe", "argv", "z")).stdout
    assert direct.splitlines() == ["/usr/bin/probe", "argv", "z"]
    listed = ok(preload_store(*run, "probe", "execvp", loader, "--list", "/usr/bin/probe")).stdout
    containers = json.loads(ok(preload_store("ps", "--json")).stdout)
    [rootfs] = [c["rootfs"] for c in containers if "musl" in c["names"]]
    assert loader in listed and "hpcbox" not in listed and rootfs not in listed, listed
    # system() runs /bin/sh, here the static busybox: handed to the ptrace engine's tracer
    proc = preload_store(*run, "probe", "system", "exit 3")
    assert proc.stdout.strip() == "status 3", proc.stderr
    proc = preload_store(*run, "sh", "-c", "exit 4")
    assert proc.returncode == 4, proc.stderr
