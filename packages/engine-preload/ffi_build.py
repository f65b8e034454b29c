"""Builders for hpcbox_engine_preload, used by hatch_build.py.

Four artefacts come from csrc/ (and the shared path core in csrc/guestpath/ at the repository
root, or the sdist's copy of it):

- ``_core``: the cffi module (API mode) with the translation the library performs, for the
  property tests and the Python side;
- ``libhpcbox-preload.so``: the library injected with LD_PRELOAD into glibc programs, built with
  the host's compiler but referencing no glibc symbol version newer than 2.14 (tests check <= 2.31);
- ``libhpcbox-preload-musl.so``: the same sources built with ``musl-gcc`` for musl programs (for
  another architecture: the cross compiler on the target's musl headers, ``HPCBOX_MUSL_INCLUDE``;
  skipped, with a note, where neither is there: such containers then get a clear error), with
  no DT_NEEDED at all: musl's loader resolves its symbols from the libc already loaded, and the
  build host's ``libc.so`` (glibc's linker script) is never named;
- ``hpcbox-preload-exec``: the first process of a container (launcher/launcher.c), dynamically
  linked (the library is preloaded into it), with its own entry point (launcher/start.c) so that
  it needs no glibc symbol newer than 2.17.

The compiler, flags and commands come from hpcbox_cbuild.Compiler (see hatch_build.py).

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
PRELOAD_LIBRARY = "libhpcbox-preload.so"
PRELOAD_LIBRARY_MUSL = "libhpcbox-preload-musl.so"
LAUNCHER = "hpcbox-preload-exec"
CORE_SOURCES = ["abi.c", "translate.c", "sys.c", "next.c", "say.c", "gp_core.c"]


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
    #define GP_PARENT ...
    #define GP_NO_MOUNT ...
    #define GP_RMDIR ...
    #define GP_UNLINK ...
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
                                 const char *guest_path, int how, char *out, size_t out_size);
    int hpcbox_preload_classify(const char *host_path, char *interp, size_t interp_size);
    """
)
MODULE = "hpcbox_engine_preload._core"
MODULE_SOURCES = [CSRC / name for name in CORE_SOURCES]
INCLUDES = [CSRC, GUESTPATH]
ffibuilder.set_source(MODULE, '#include "hpcbox_preload.h"\n#include "guestpath.h"')

# -Bsymbolic-functions: the library's calls to its own exported functions (hpcbox_preload_classify,
# its wrappers of open, getcwd...) are bound when linked, not through the PLT, where the first call
# of each in a forked child cost a symbol lookup and a page fault; preloaded, they resolved to these.
# -z noseparate-code: two loadable segments (code with its read-only data, then data) instead of
# four, so the loader maps the library in every process with two system calls fewer (x86_64's ld
# separates them by default since binutils 2.31; older ones ignore the option).
# -z now -z relro (full RELRO): every symbol bound at load, then the GOT read-only; with the larger
# statics in .data (HP_DATA), the data segment ends in the pages of the file and the loader maps
# it with no anonymous mapping for .bss: one mmap less per process, and hardened. Per fork+exec of
# ls from a dash loop pinned to one CPU (41 interleaved rounds): 1.102x -> 1.091x of native.
LIBRARY_FLAGS = ["-fPIC", "-shared", "-fvisibility=hidden", "-Wl,-Bsymbolic-functions",
                 "-Wl,-z,noseparate-code", "-Wl,-z,now", "-Wl,-z,relro"]


def _library_sources() -> List[Path]:
    return sorted(CSRC.glob("*.c"))


def build_preload_library(cc, out_dir: Path) -> Path:
    """The LD_PRELOAD library for glibc programs, with the package's C compiler."""
    out = out_dir / PRELOAD_LIBRARY
    # No libdl.so.2: dlsym@GLIBC_2.2.5 is weak (libc has it since glibc 2.34); before, the library
    # finds the next definitions itself (csrc/next.c), one object less to map in every process. A
    # build host older than glibc 2.34 has that version of dlsym in libdl only: linked there.
    cmd = cc.command(out, _library_sources(), INCLUDES, LIBRARY_FLAGS)
    if cc.run(cmd, out.name, check=False) != 0:
        print("hpcbox-engine-preload: linking again with libdl.so.2 (a build host older than glibc 2.34?)")
        cc.run([*cmd, "-Wl,--no-as-needed", "-l:libdl.so.2"], out.name)
    return out


def _musl_compiler(cc):
    """The compiler of the musl build, or None (with a note): musl-gcc for this machine; for another
    architecture, the cross compiler CC on the target's musl headers (HPCBOX_MUSL_INCLUDE, e.g.
    Debian's musl-dev:arm64 unpacked with dpkg-deb -x DIR: DIR/usr/include/aarch64-linux-musl)."""
    if cc.machine() == cc.native_machine():
        musl_gcc = shutil.which("musl-gcc")
        if musl_gcc:
            return cc.with_compiler([musl_gcc])
        print("hpcbox-engine-preload: musl-gcc not found (Debian: musl-tools); no musl build, so containers "
              "of musl programs cannot run with this engine")
        return None
    headers = os.environ.get("HPCBOX_MUSL_INCLUDE")
    if not headers or not (Path(headers) / "stdio.h").is_file():
        print(f"hpcbox-engine-preload: no musl headers for {cc.machine()} (HPCBOX_MUSL_INCLUDE: the target's "
              "musl-dev headers); no musl build, so containers of musl programs cannot run with this engine")
        return None
    done = subprocess.run([*cc.argv, "-print-file-name=include"], capture_output=True, text=True, check=False)
    own = done.stdout.strip()  # the compiler's own headers (stddef.h, stdarg.h), which musl relies on
    if done.returncode != 0 or not os.path.isdir(own):
        print(f"hpcbox-engine-preload: {cc.argv[0]} -print-file-name=include failed; no musl build")
        return None
    return cc.with_compiler([*cc.argv, "-nostdinc", "-isystem", headers, "-isystem", own])


def build_musl_library(cc, out_dir: Path) -> Optional[Path]:
    """The musl build, or None (with a note) where there is no musl compiler for the target."""
    musl = _musl_compiler(cc)
    if musl is None:
        return None
    out = out_dir / PRELOAD_LIBRARY_MUSL
    # -nodefaultlibs: no DT_NEEDED libc.so; -lgcc for the compiler's own helpers, linked in. On
    # aarch64, no outline atomics: libgcc's helpers for them ask glibc's __getauxval, which musl lacks.
    flags = [*LIBRARY_FLAGS, *(["-mno-outline-atomics"] if cc.machine() == "aarch64" else [])]
    musl.run(musl.command(out, _library_sources(), INCLUDES, flags, ["-nodefaultlibs", "-lgcc"]), out.name)
    return out


def build_launcher(cc, out_dir: Path, common: Path) -> Path:
    """The launcher; `common`: the C headers shared by the helpers (csrc/common, hpcbox_version.h)."""
    out = out_dir / LAUNCHER
    sources = [HERE / "launcher" / "launcher.c"]
    link: List[str] = []
    if cc.targets_glibc() and cc.machine() in ("x86_64", "aarch64"):
        sources.append(HERE / "launcher" / "start.c")
        link = ["-nostartfiles"]
    return cc.executable(out, sources, [common], static=False, link=link)


def build_all(cc, out_dir: Path, common: Path) -> List[Path]:
    """Every native artefact but the cffi module, in out_dir."""
    built = [build_preload_library(cc, out_dir), build_launcher(cc, out_dir, common)]
    musl = build_musl_library(cc, out_dir)
    return built + ([musl] if musl else [])
