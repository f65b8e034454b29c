"""Test images as OCI image layouts, built with umoci and skopeo as an ordinary user, cached between sessions.

Over 500 lines: one builder, whose recipes share the cache key, the lock and the layer writers; a
third of the file is this list of images and the expected tree of ``layered``, which belong with it.

``TestImages(cache_dir, inputs_dir).layout(name)`` returns the directory of an OCI layout whose only tag is
``latest``. Layouts are cached in ``$HPCBOX_TEST_CACHE`` (default ``~/.cache/hpcbox-tests``) under a key
that hashes this module's source and the recipe's inputs, so a changed recipe rebuilds. Builds happen in
a temporary directory renamed into place, under a lock, so concurrent sessions never see half a layout.

Images (``IMAGE_NAMES``, then ``PRELOAD_IMAGE_NAMES``):

- ``busybox``: the host's static busybox in one gzip layer (``/bin/busybox``, ``/bin/sh`` -> busybox,
  ``/etc/passwd``, ``/etc/group``, empty ``/tmp`` 1777, ``/root`` 0700), OCI media types, Cmd ``/bin/sh``.
- ``busybox-docker``: the same image converted by ``skopeo copy --format v2s2``: Docker schema2 manifest
  and layer media types. skopeo cannot read a Docker-typed manifest back from an OCI layout (umoci can),
  so pushes of this image copy ``busybox`` with ``--format v2s2``, which gives the same manifest digest.
- ``debian12``: Debian 12 minbase from ``$HPCBOX_TEST_INPUTS/debian12-minbase.tar.gz`` (made as root by
  ``scripts/prepare-test-inputs``); it contains device nodes under ``/dev``.
- ``layered``: ``busybox`` plus two layers exercising whiteouts, an opaque directory, hardlinks (also to a
  lower layer's file), absolute and relative symlinks, a 0000 file and a 0700 directory; the expected
  result after applying all layers is :data:`LAYERED_EXPECTED`.
- ``multiarch``: an OCI index (nested in the layout, tag ``latest``) of linux/amd64 (the host busybox) and
  linux/arm64/v8 (busybox-static:arm64 from ``$HPCBOX_TEST_INPUTS/busybox-static_arm64.deb``).
- ``zstd``: ``busybox`` recompressed by ``skopeo copy --dest-compress-format zstd`` (layer ``tar+zstd``).

Built on demand by the preload tests (``PRELOAD_IMAGE_NAMES``):

- ``debian11``, ``debian13``: Debian 11 (glibc 2.31) and 13 minbase from ``$HPCBOX_TEST_INPUTS/`` files
  ``debian11-minbase.tar.gz`` and ``debian13-minbase.tar.gz``, like ``debian12`` (the preload engine's
  oldest and newest glibc).
- ``musl``: a musl image from what Debian's musl and musl-tools install: the loader/libc as
  ``/lib/ld-musl-x86_64.so.1``, :data:`PROBE_C` built with musl-gcc as ``/usr/bin/probe`` (dynamic) with
  ``/usr/lib/libprobe.so`` for dlopen, a ``#!/usr/bin/probe argv`` script ``/usr/bin/probe-script``, and the
  host's static busybox as ``/bin/sh``.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

IMAGE_NAMES = ("busybox", "busybox-docker", "debian12", "layered", "multiarch", "zstd")
# Built on demand by the preload engine's tests (not in IMAGE_NAMES: the fixture tests build each of those).
PRELOAD_IMAGE_NAMES = ("debian11", "debian13", "musl")
DEFAULT_INPUTS = "/var/cache/hpcbox-test-inputs"
DEBIAN12_TARBALL = "debian12-minbase.tar.gz"
DEBIAN_TARBALLS = {"debian11": "debian11-minbase.tar.gz", "debian12": DEBIAN12_TARBALL,
                   "debian13": "debian13-minbase.tar.gz"}
MUSL_LIBC = "/usr/lib/x86_64-linux-musl/libc.so"  # Debian's musl package; its loader is this file too
MUSL_GCC = "/usr/bin/musl-gcc"  # Debian's musl-tools
ARM64_BUSYBOX_DEB = "busybox-static_arm64.deb"
HOST_BUSYBOX = "/bin/busybox"
TAG = "latest"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REF_NAME = "org.opencontainers.image.ref.name"

# What /data and /etc of "layered" hold once its three layers are applied in order:
# path -> ("file", mode, content) | ("dir", mode) | ("symlink", target) | ("hardlink", same-inode-as).
LAYERED_EXPECTED: Dict[str, tuple] = {
    "etc/keep.txt": ("file", 0o644, b"keep\n"),
    "data": ("dir", 0o755),
    "data/original.txt": ("file", 0o644, b"original\n"),
    "data/link-to-lower": ("hardlink", "data/original.txt"),
    "data/opaque": ("dir", 0o755),
    "data/opaque/upper.txt": ("file", 0o644, b"upper\n"),
    "data/twin2.txt": ("file", 0o644, b"twin\n"),
    "data/twin3.txt": ("hardlink", "data/twin2.txt"),
    "data/abs-link": ("symlink", "/etc/keep.txt"),
    "data/rel-link": ("symlink", "../etc/keep.txt"),
    "data/secret": ("file", 0o000, b"secret\n"),
    "data/private": ("dir", 0o700),
    "data/private/inside.txt": ("file", 0o600, b"inside\n"),
    "data/olddir": ("dir", 0o755),
    "data/olddir/new.txt": ("file", 0o644, b"new\n"),
}
# ... and what must be gone: deleted by whiteouts (also the lower content of the opaque directory).
LAYERED_ABSENT = (
    "etc/gone.txt",
    "data/olddir/a.txt",
    "data/olddir/sub",
    "data/opaque/lower.txt",
    "data/twin1.txt",
)


# A test program of the preload engine: one libc feature per subcommand. Built with musl-gcc into the
# musl image, and by the preload tests with the host's gcc (-DPROBE_OLD_GLIBC: old symbol versions and
# its own _start, so that it also runs on Debian 11's glibc 2.31).
PROBE_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__GLIBC__) && defined(PROBE_OLD_GLIBC)
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
__asm__(".symver dlerror,dlerror@GLIBC_2.2.5");
__asm__(".symver __libc_start_main,__libc_start_main@GLIBC_2.2.5");
int main(int argc, char **argv);
__asm__(".text\n.globl _start\n.type _start,@function\n_start:\n"
        "  xor %ebp,%ebp\n  mov %rdx,%r9\n  pop %rsi\n  mov %rsp,%rdx\n  and $-16,%rsp\n"
        "  push %rax\n  push %rsp\n  xor %r8d,%r8d\n  xor %ecx,%ecx\n  lea main(%rip),%rdi\n"
        "  call __libc_start_main@PLT\n  hlt\n");
#endif

extern char **environ;

static int wait_for(pid_t pid)
{
    int status = 0;

    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cat(const char *path)
{
    char buf[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY);

    if (fd < 0) {
        perror(path);
        return 1;
    }
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    char buf[PATH_MAX];
    const char *cmd = argc > 1 ? argv[1] : "";

    if (!strcmp(cmd, "argv")) {
        for (int i = 0; i < argc; i++)
            printf("%s\n", argv[i]);
    } else if (!strcmp(cmd, "cat") && argc > 2) {
        return cat(argv[2]);
    } else if (!strcmp(cmd, "exe")) {
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = '\0';
        printf("%s\n", buf);
    } else if (!strcmp(cmd, "chdir") && argc > 3) {
        if (chdir(argv[2]) < 0) {
            perror(argv[2]);
            return 1;
        }
        printf("%s\n", getcwd(buf, sizeof buf) ? buf : "(getcwd failed)");
        fflush(stdout);
        return cat(argv[3]);
    } else if (!strcmp(cmd, "realpath") && argc > 2) {
        printf("%s\n", realpath(argv[2], buf) ? buf : "(realpath failed)");
    } else if (!strcmp(cmd, "spawn") && argc > 2) {
        pid_t pid;
        int rc = posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ);
        fflush(stdout);
        if (rc) {
            printf("posix_spawnp: %s\n", strerror(rc));
            return 1;
        }
        printf("status %d\n", wait_for(pid));
    } else if (!strcmp(cmd, "execvp") && argc > 2) {
        fflush(stdout);
        execvp(argv[2], argv + 2);
        perror("execvp");
        return 127;
    } else if (!strcmp(cmd, "system") && argc > 2) {
        int status;
        fflush(stdout);
        status = system(argv[2]);
        printf("status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else if (!strcmp(cmd, "popen") && argc > 2) {
        FILE *f;
        int status;
        fflush(stdout);
        f = popen(argv[2], "r");
        if (!f) {
            perror("popen");
            return 1;
        }
        while (fgets(buf, sizeof buf, f))
            printf("popen: %s", buf);
        status = pclose(f);
        printf("status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else if (!strcmp(cmd, "dlopen") && argc > 3) {
        void *h = dlopen(argv[2], RTLD_NOW);
        int (*fn)(void) = h ? (int (*)(void))dlsym(h, argv[3]) : NULL;
        if (!fn) {
            printf("dlopen: %s\n", dlerror());
            return 1;
        }
        printf("%s() = %d\n", argv[3], fn());
    } else if (!strcmp(cmd, "clearenv") && argc > 2) {
        clearenv();
        fflush(stdout);
        execv(argv[2], argv + 2);
        perror("execv");
        return 127;
    } else {
        fprintf(stderr, "usage: probe argv|cat F|exe|chdir D F|realpath P|spawn P..|execvp P..|"
                        "system CMD|popen CMD|dlopen LIB SYM|clearenv PROG..\n");
        return 2;
    }
    return 0;
}
"""
PROBE_LIB_C = "int probe_answer(void) { return 42; }\n"


class MissingInputError(RuntimeError):
    """An input prepared as root is missing: run ``sudo scripts/prepare-test-inputs``."""


def _run(command: List[str], cwd: Optional[Path] = None) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


# -- tar layers written by hand (deterministic: fixed owners and mtimes) ------------------------------
class _Layer:
    def __init__(self, path: Path):
        self.tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 (closed by close())

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 1700000000, 0, 0
        info.uname = info.gname = "root"
        return info

    def dir(self, name: str, mode: int = 0o755) -> None:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name: str, content: bytes, mode: int = 0o644) -> None:
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(content)
        self.tar.addfile(info, io.BytesIO(content))

    def host_file(self, name: str, source: Path, mode: int = 0o755) -> None:
        self.file(name, Path(source).read_bytes(), mode)

    def symlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)

    def hardlink(self, name: str, target: str) -> None:
        info = self._info(name, tarfile.LNKTYPE, 0o644)
        info.linkname = target
        self.tar.addfile(info)

    def close(self) -> None:
        self.tar.close()


def _busybox_layer(path: Path, busybox: Path) -> None:
    layer = _Layer(path)
    for name, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777)):
        layer.dir(name, mode)
    layer.host_file("bin/busybox", busybox)
    layer.symlink("bin/sh", "busybox")
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    layer.close()


def _layered_layers(directory: Path) -> List[Path]:
    paths = [directory / f"layered-{n}.tar" for n in (1, 2, 3)]
    lower = _Layer(paths[0])  # on top of busybox
    lower.file("etc/keep.txt", b"keep\n")
    lower.file("etc/gone.txt", b"gone\n")
    lower.dir("data")
    lower.file("data/original.txt", b"original\n")
    lower.dir("data/olddir")
    lower.file("data/olddir/a.txt", b"a\n")
    lower.dir("data/olddir/sub")
    lower.file("data/olddir/sub/b.txt", b"b\n")
    lower.dir("data/opaque")
    lower.file("data/opaque/lower.txt", b"lower\n")
    lower.close()
    upper = _Layer(paths[1])
    upper.dir("etc")
    upper.file("etc/.wh.gone.txt", b"")
    upper.dir("data")
    upper.file("data/.wh.olddir", b"")
    upper.dir("data/opaque")
    upper.file("data/opaque/.wh..wh..opq", b"")
    upper.file("data/opaque/upper.txt", b"upper\n")
    upper.hardlink("data/link-to-lower", "data/original.txt")
    upper.file("data/twin1.txt", b"twin\n")
    upper.hardlink("data/twin2.txt", "data/twin1.txt")
    upper.hardlink("data/twin3.txt", "data/twin1.txt")
    upper.symlink("data/abs-link", "/etc/keep.txt")
    upper.symlink("data/rel-link", "../etc/keep.txt")
    upper.file("data/secret", b"secret\n", 0o000)
    upper.dir("data/private", 0o700)
    upper.file("data/private/inside.txt", b"inside\n", 0o600)
    upper.close()
    top = _Layer(paths[2])
    top.dir("data")
    top.file("data/.wh.twin1.txt", b"")  # its hardlinked twins stay
    top.dir("data/olddir")  # a directory deleted below, made again
    top.file("data/olddir/new.txt", b"new\n")
    top.close()
    return paths


# -- umoci helpers ------------------------------------------------------------------------------------
def _umoci_image(layout: Path, tag: str, layers: List[Path], arch: str) -> None:
    """Create ``layout:tag`` from uncompressed tar ``layers`` (applied in order) with umoci."""
    umoci = shutil.which("umoci") or "umoci"
    image = f"{layout}:{tag}"
    if not (layout / "oci-layout").exists():
        _run([umoci, "init", "--layout", str(layout)])
    _run([umoci, "new", "--image", image])
    for layer in layers:
        _run([umoci, "raw", "add-layer", "--image", image, str(layer)])
    _run(
        [
            umoci,
            "config",
            "--image",
            image,
            "--os",
            "linux",
            "--architecture",
            arch,
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--config.workingdir",
            "/",
            "--author",
            "hpcbox tests",
            "--created",
            "2023-11-14T22:13:20Z",
        ]
    )
    _run([umoci, "gc", "--layout", str(layout)])


def _skopeo_copy(options: List[str], source: str, dest: str) -> None:
    _run([shutil.which("skopeo") or "skopeo", "copy", "--quiet", *options, source, dest])


def read_index(layout: Path) -> dict:
    return json.loads((layout / "index.json").read_text())


def top_descriptor(layout: Path, tag: str = TAG) -> dict:
    """The descriptor that ``index.json`` names ``tag``."""
    for descriptor in read_index(layout)["manifests"]:
        if descriptor.get("annotations", {}).get(REF_NAME) == tag:
            return descriptor
    raise KeyError(f"{layout} has no image tagged {tag!r}")


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def _write_blob(layout: Path, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


class TestImages:
    """Builds and caches the test image layouts. ``layout(name) -> Path``."""

    __test__ = False  # not a pytest test class

    def __init__(self, cache_dir: Optional[Path] = None, inputs_dir: Optional[Path] = None):
        default_cache = Path(os.environ.get("HPCBOX_TEST_CACHE") or Path.home() / ".cache" / "hpcbox-tests")
        self.cache_dir = Path(cache_dir or default_cache)
        self.inputs_dir = Path(inputs_dir or os.environ.get("HPCBOX_TEST_INPUTS") or DEFAULT_INPUTS)
        self._built: Dict[str, Path] = {}

    # -- inputs and cache keys -----------------------------------------------------------------
    def input_path(self, filename: str) -> Path:
        path = self.inputs_dir / filename
        if not path.is_file() or not os.access(path, os.R_OK):
            raise MissingInputError(
                f"test input {path} is missing or unreadable: run `sudo scripts/prepare-test-inputs` "
                f"(set HPCBOX_TEST_INPUTS to use another directory)"
            )
        return path

    def _inputs(self, name: str) -> List[Path]:
        if name in ("busybox", "busybox-docker", "layered", "zstd"):
            return [Path(HOST_BUSYBOX)]
        if name == "multiarch":
            return [Path(HOST_BUSYBOX), self.input_path(ARM64_BUSYBOX_DEB)]
        if name in DEBIAN_TARBALLS:
            return [self.input_path(DEBIAN_TARBALLS[name])]
        if name == "musl":
            for tool in (MUSL_LIBC, MUSL_GCC):
                if not os.access(tool, os.R_OK):
                    raise MissingInputError(f"{tool} is missing: install Debian's musl-tools "
                                            "(apt-get install musl-tools) to build the musl test image")
            return [Path(MUSL_LIBC), Path(HOST_BUSYBOX), Path(MUSL_GCC)]
        names = ", ".join(IMAGE_NAMES + PRELOAD_IMAGE_NAMES)
        raise ValueError(f"unknown test image {name!r}: choose one of {names}")

    def cache_key(self, name: str) -> str:
        digest = hashlib.sha256(Path(__file__).read_bytes())
        digest.update(name.encode())
        for path in self._inputs(name):
            stat = path.stat()
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]

    # -- the public API ------------------------------------------------------------------------
    def layout(self, name: str) -> Path:
        """The cached OCI layout of test image ``name`` (built now if missing), tagged ``latest``."""
        if name in self._built:
            return self._built[name]
        final = self.cache_dir / f"{name}-{self.cache_key(name)}"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cache_dir / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (final / "index.json").exists():
                with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=f".build-{name}-") as tmp:
                    work = Path(tmp)
                    layout = work / "layout"
                    getattr(self, "_build_" + name.replace("-", "_"))(layout, work)
                    shutil.rmtree(final, ignore_errors=True)
                    layout.rename(final)
        self._built[name] = final
        return final

    def push_source(self, name: str) -> Tuple[str, List[str], str]:
        """``(skopeo source, extra skopeo copy options, media type of the pushed top manifest)``."""
        if name == "busybox-docker":
            return f"oci:{self.layout('busybox')}:{TAG}", ["--format=v2s2"], DOCKER_MANIFEST
        layout = self.layout(name)
        media_type = top_descriptor(layout)["mediaType"]
        options = ["--all"] if media_type == OCI_INDEX else []
        return f"oci:{layout}:{TAG}", options, media_type

    # -- recipes -------------------------------------------------------------------------------
    def _build_busybox(self, layout: Path, work: Path) -> None:
        _busybox_layer(work / "busybox.tar", Path(HOST_BUSYBOX))
        _umoci_image(layout, TAG, [work / "busybox.tar"], "amd64")

    def _build_busybox_docker(self, layout: Path, work: Path) -> None:
        _skopeo_copy(["--format=v2s2"], f"oci:{self.layout('busybox')}:{TAG}", f"oci:{layout}:{TAG}")

    def _build_zstd(self, layout: Path, work: Path) -> None:
        _skopeo_copy(
            ["--dest-compress-format=zstd"], f"oci:{self.layout('busybox')}:{TAG}", f"oci:{layout}:{TAG}"
        )

    def _build_layered(self, layout: Path, work: Path) -> None:
        _busybox_layer(work / "busybox.tar", Path(HOST_BUSYBOX))
        _umoci_image(layout, TAG, [work / "busybox.tar", *_layered_layers(work)], "amd64")

    def _build_debian12(self, layout: Path, work: Path) -> None:
        self._build_debian(layout, work, "debian12")

    def _build_debian11(self, layout: Path, work: Path) -> None:
        self._build_debian(layout, work, "debian11")

    def _build_debian13(self, layout: Path, work: Path) -> None:
        self._build_debian(layout, work, "debian13")

    def _build_debian(self, layout: Path, work: Path, name: str) -> None:
        tarball = self.input_path(DEBIAN_TARBALLS[name])
        rootfs_tar = work / "rootfs.tar"
        with gzip.open(tarball, "rb") as source, open(rootfs_tar, "wb") as dest:
            shutil.copyfileobj(source, dest, 1 << 20)
        _umoci_image(layout, TAG, [rootfs_tar], "amd64")

    def _build_musl(self, layout: Path, work: Path) -> None:
        (work / "probe.c").write_text(PROBE_C)
        (work / "libprobe.c").write_text(PROBE_LIB_C)
        _run([MUSL_GCC, "-O2", "-o", str(work / "probe"), str(work / "probe.c")])
        _run([MUSL_GCC, "-O2", "-shared", "-fPIC", "-o", str(work / "libprobe.so"), str(work / "libprobe.c")])
        layer = _Layer(work / "musl.tar")
        for name, mode in (("bin", 0o755), ("etc", 0o755), ("lib", 0o755), ("root", 0o700), ("tmp", 0o1777),
                           ("usr", 0o755), ("usr/bin", 0o755), ("usr/lib", 0o755)):
            layer.dir(name, mode)
        layer.host_file("lib/ld-musl-x86_64.so.1", Path(MUSL_LIBC))
        layer.host_file("bin/busybox", Path(HOST_BUSYBOX))
        layer.symlink("bin/sh", "busybox")
        layer.host_file("usr/bin/probe", work / "probe")
        layer.host_file("usr/lib/libprobe.so", work / "libprobe.so", 0o644)
        layer.file("usr/bin/probe-script", b"#!/usr/bin/probe argv\n", 0o755)
        layer.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        layer.file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        layer.close()
        _umoci_image(layout, TAG, [work / "musl.tar"], "amd64")

    def _build_multiarch(self, layout: Path, work: Path) -> None:
        deb_root = work / "arm64"
        _run(["dpkg-deb", "-x", str(self.input_path(ARM64_BUSYBOX_DEB)), str(deb_root)])
        platforms = (("amd64", None, Path(HOST_BUSYBOX)), ("arm64", "v8", deb_root / "bin" / "busybox"))
        manifests = []
        for arch, variant, busybox in platforms:
            _busybox_layer(work / f"{arch}.tar", busybox)
            _umoci_image(layout, arch, [work / f"{arch}.tar"], arch)
            descriptor = dict(top_descriptor(layout, arch))
            descriptor.pop("annotations", None)
            descriptor["platform"] = {"architecture": arch, "os": "linux"}
            if variant:
                descriptor["platform"]["variant"] = variant
            manifests.append(descriptor)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        blob = _write_blob(layout, json.dumps(index, indent=2).encode())
        top = {"mediaType": OCI_INDEX, **blob, "annotations": {REF_NAME: TAG}}
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
