"""Builders for hpcbox_engine_preload, used by hatch_build.py.

Two artefacts come from csrc/: the cffi module ``_core`` (API mode) that tests and the
Python side call, and ``libhpcbox-preload.so``, the library injected with LD_PRELOAD.
Lives outside the import package so that the installed package never imports cffi's
builder machinery.
"""

import os
import subprocess
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
STRICT = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]
PRELOAD_LIBRARY = "libhpcbox-preload.so"

ffibuilder = FFI()
ffibuilder.cdef(
    """
    int hpcbox_preload_abi_version(void);
    """
)
ffibuilder.set_source(
    "hpcbox_engine_preload._core",
    '#include "hpcbox_preload.h"',
    sources=[str(p) for p in sorted(CSRC.glob("*.c"))],
    include_dirs=[str(CSRC)],
    extra_compile_args=STRICT,
)


def build_preload_library(out_dir: str) -> Path:
    """Compile the LD_PRELOAD library with the host's C compiler into out_dir."""
    out = Path(out_dir) / PRELOAD_LIBRARY
    cc = os.environ.get("CC", "cc")
    cmd = [cc, *STRICT, "-fPIC", "-shared", "-fvisibility=hidden", f"-I{CSRC}", "-o", str(out)]
    cmd += [str(p) for p in sorted(CSRC.glob("*.c"))] + ["-ldl"]
    subprocess.run(cmd, check=True)
    return out


if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
    print(build_preload_library("."))
