"""Builders for hpcbox_engine_preload, used by hatch_build.py.

Four artefacts come from csrc/ (and the shared path core in csrc/guestpath/ at the repository
root, or the sdist's copy of it):

- ``_core``: the cffi module (API mode) with the translation the library performs, for the
  property tests and the Python side;
- ``libhpcbox-preload.so``: the library injected with LD_PRELOAD into glibc programs, built with
  the host's compiler but referencing no glibc symbol version newer than 2.14 (tests check <= 2.31);
- ``libhpcbox-preload-musl.so``: the same sources built with ``musl-gcc`` for musl programs
  (skipped, with a note, where musl-gcc is missing: such containers then get a clear error);
- ``hpcbox-preload-exec``: the first process of a container (launcher/launcher.c).

Lives outside the import package so that the installed package never imports cffi's builder
machinery.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
STRICT = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]
PRELOAD_LIBRARY = "libhpcbox-preload.so"
PRELOAD_LIBRARY_MUSL = "libhpcbox-preload-musl.so"
LAUNCHER = "hpcbox-preload-exec"
CORE_SOURCES = ["abi.c", "translate.c", "sys.c", "next.c", "gp_core.c"]


def guestpath_dir() -> Path:
    """Where csrc/guestpath lives: the sdist's own copy first, else the repository's."""
    for candidate in (CSRC / "guestpath", HERE.parent.parent / "csrc" / "guestpath"):
        if (candidate / "guestpath.h").is_file():
            return candidate
    raise RuntimeError(
        "hpcbox-engine-preload: csrc/guestpath not found beside ffi_build.py nor at the repository "
        "root; build from the hpcbox repository or from its sdist"
    )


GUESTPATH = guestpath_dir()

ffibuilder = FFI()
ffibuilder.cdef(
    """
    int hpcbox_preload_abi_version(void);

    #define GP_FOLLOW_LAST ...
    #define GP_OUTSIDE ...
    #define HPCBOX_EXEC_UNKNOWN ...
    #define HPCBOX_EXEC_SCRIPT ...
    #define HPCBOX_EXEC_DYNAMIC ...
    #define HPCBOX_EXEC_STATIC ...
    struct gp_context { ...; };
    int gp_context_init(struct gp_context *ctx, const char *host_root);
    void gp_context_destroy(struct gp_context *ctx);
    int gp_add_binding(struct gp_context *ctx, const char *guest, const char *host);
    int gp_to_guest(const struct gp_context *ctx, const char *host_path, char *out, size_t out_size);
    int hpcbox_preload_translate(const struct gp_context *ctx, const char *guest_cwd,
                                 const char *guest_path, int follow, char *out, size_t out_size);
    int hpcbox_preload_classify(const char *host_path, char *interp, size_t interp_size);
    """
)
ffibuilder.set_source(
    "hpcbox_engine_preload._core",
    '#include "hpcbox_preload.h"\n#include "guestpath.h"',
    sources=[str(CSRC / name) for name in CORE_SOURCES],
    include_dirs=[str(CSRC), str(GUESTPATH)],
    extra_compile_args=STRICT,
)


def _library_sources() -> List[str]:
    return [str(p) for p in sorted(CSRC.glob("*.c"))]


def build_preload_library(out_dir: str, cc: Optional[str] = None, name: str = PRELOAD_LIBRARY) -> Path:
    """Compile the LD_PRELOAD library into out_dir (glibc: with the host's C compiler)."""
    out = Path(out_dir) / name
    cc = cc or os.environ.get("CC", "cc")
    cmd = [cc, *STRICT, "-fPIC", "-shared", "-fvisibility=hidden", f"-I{CSRC}", f"-I{GUESTPATH}",
           "-o", str(out), *_library_sources()]
    # No libdl.so.2: dlsym@GLIBC_2.2.5 is weak (libc has it since glibc 2.34); before, the library
    # finds the next definitions itself (csrc/next.c), one object less to map in every process. A
    # build host older than glibc 2.34 has that version of dlsym in libdl only: linked there.
    rc = subprocess.run(cmd, check=False).returncode
    if rc != 0 and name != PRELOAD_LIBRARY:
        raise subprocess.CalledProcessError(rc, cmd)
    if rc != 0:
        print("hpcbox-engine-preload: linking again with libdl.so.2 (a build host older than glibc 2.34?)")
        subprocess.run([*cmd, "-Wl,--no-as-needed", "-l:libdl.so.2"], check=True)
    return out


def build_musl_library(out_dir: str) -> Optional[Path]:
    """The musl build, or None (with a note) where musl-gcc is not installed."""
    musl_gcc = shutil.which("musl-gcc")
    if not musl_gcc:
        print("hpcbox-engine-preload: musl-gcc not found (Debian: musl-tools); no musl build, so "
              "containers of musl programs cannot run with this engine")
        return None
    return build_preload_library(out_dir, musl_gcc, PRELOAD_LIBRARY_MUSL)


def build_launcher(out_dir: str) -> Path:
    out = Path(out_dir) / LAUNCHER
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, *STRICT, "-o", str(out), str(HERE / "launcher" / "launcher.c")], check=True)
    return out


def build_all(out_dir: str) -> List[Path]:
    """Every native artefact but the cffi module, in out_dir."""
    built = [build_preload_library(out_dir), build_launcher(out_dir)]
    musl = build_musl_library(out_dir)
    return built + ([musl] if musl else [])


if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
    print(build_all("."))
