"""The preload engine on real images, as the calling user (unprivileged in CI): Debian 11 (glibc 2.31,
older than the host's), 12 and 13, and a musl image. Real programs (bash, coreutils, find, tar, perl,
python3 where the image has it) and a probe program (hpcbox_testing.images.PROBE_C) for the libc calls
no shell makes: posix_spawn, system(), dlopen, execvp through PATH, chdir with relative paths,
/proc/self/exe, and an exec after clearenv().
"""

from __future__ import annotations

import json
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
def test_a_static_program_inside_is_refused_clearly(preload_store, image):
    need(preload_store, image)
    proc = preload(preload_store, "-v", f"{images.HOST_BUSYBOX}:/opt/busybox:ro", image, "bash", "-c",
                   "/opt/busybox true; echo status=$?")
    assert proc.stdout.strip() == "status=126"
    assert "/opt/busybox is statically linked" in proc.stderr and "--engine ptrace" in proc.stderr


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
    # system() runs /bin/sh, here the static busybox: refused with the clear line
    proc = preload_store(*run, "probe", "system", "true")
    assert proc.stdout.strip() == "status 127" and "statically linked" in proc.stderr
    proc = preload_store(*run, "sh", "-c", "true")
    assert proc.returncode == 125 and "/bin/sh is statically linked" in proc.stderr
