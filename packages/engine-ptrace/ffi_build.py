"""cffi builder for hpcbox_engine_ptrace._core (API mode), used by hatch_build.py.

Lives outside the import package so that the installed package never imports cffi's
builder machinery.
"""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
STRICT = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]

ffibuilder = FFI()
ffibuilder.cdef(
    """
    int hpcbox_ptrace_abi_version(void);
    """
)
ffibuilder.set_source(
    "hpcbox_engine_ptrace._core",
    '#include "hpcbox_ptrace.h"',
    sources=[str(p) for p in sorted(CSRC.glob("*.c"))],
    include_dirs=[str(CSRC)],
    extra_compile_args=STRICT,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
