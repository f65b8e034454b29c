"""cffi builder for hpcbox_engine_ptrace._core (API mode), used by hatch_build.py.

Lives outside the import package so that the installed package never imports cffi's
builder machinery.

The path core is shared with the preload engine and lives at the repository root in
csrc/guestpath/. Built from the repository, the sources are taken from there; an sdist carries
its own copy in csrc/guestpath/ (see [tool.hatch.build.targets.sdist] in pyproject.toml).
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"


def guestpath_dir() -> Path:
    """Where csrc/guestpath lives: the sdist's own copy first, else the repository's."""
    for candidate in (CSRC / "guestpath", HERE.parent.parent / "csrc" / "guestpath"):
        if (candidate / "guestpath.h").is_file():
            return candidate
    raise RuntimeError(
        "hpcbox-engine-ptrace: csrc/guestpath not found beside ffi_build.py nor at the repository "
        "root; build from the hpcbox repository or from its sdist"
    )


GUESTPATH = guestpath_dir()

ffibuilder = FFI()
ffibuilder.cdef(
    """
    int hpcbox_ptrace_abi_version(void);

    #define GP_FOLLOW_LAST ...
    #define GP_PARENT ...
    #define GP_NO_MOUNT ...
    #define GP_RMDIR ...
    #define GP_UNLINK ...
    #define GP_OUTSIDE ...
    #define GP_MAX_LINKS ...
    struct gp_context { ...; };
    int gp_context_init(struct gp_context *ctx, const char *host_root);
    void gp_context_destroy(struct gp_context *ctx);
    int gp_add_binding(struct gp_context *ctx, const char *guest, const char *host);
    int gp_set_cwd(struct gp_context *ctx, const char *guest_cwd);
    int gp_canonical(const struct gp_context *ctx, const char *guest_path, int flags, char *out,
                     size_t out_size);
    int gp_to_host(const struct gp_context *ctx, const char *guest_path, int flags, char *out,
                   size_t out_size);
    int gp_to_guest(const struct gp_context *ctx, const char *host_path, char *out, size_t out_size);
    """
)
MODULE = "hpcbox_engine_ptrace._core"
# The module's own C files; hatch_build.py compiles them with cffi's generated source, for the
# stable ABI, with compat.h forced in (no glibc symbol newer than 2.17).
SOURCES = [*sorted(CSRC.glob("*.c")), GUESTPATH / "guestpath.c"]
INCLUDES = [CSRC, GUESTPATH]
ffibuilder.set_source(MODULE, '#include "hpcbox_ptrace.h"\n#include "guestpath.h"')
