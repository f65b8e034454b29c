"""Hatch build hook: compile the C parts into the wheel (or in place for editable installs):

- the cffi module ``_core.abi3.so`` (the path core, for tests and tools), built for CPython's
  stable ABI, so one wheel serves every CPython >= 3.9 (tag cp39-abi3-manylinux_2_17_<arch>);
- the tracer executable ``hpcbox-ptrace`` (csrc/tracer/ plus the shared csrc/guestpath/), which the
  engine runs, statically linked; no JSON reaches C, Python drives it through its argv.

How it compiles (CC, CFLAGS, static linking, the tag): hpcbox_cbuild.py, shared with the other
C packages.
"""

import importlib.util
import shutil
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "hpcbox_engine_ptrace"
TRACER = "hpcbox-ptrace"


def _load(name: str, *candidates: Path):
    for candidate in candidates:
        if candidate.is_file():
            spec = importlib.util.spec_from_file_location(name, candidate)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise SystemExit(f"{PACKAGE}: {candidates[0].name} not found in {', '.join(map(str, candidates))}; "
                     "build from the hpcbox repository or from its sdist")


def load_cbuild(root: Path):
    """hpcbox_cbuild.py: the sdist's copy beside this file, else the repository's csrc/cbuild/."""
    return _load("_hpcbox_cbuild", root / "hpcbox_cbuild.py",
                 root.parent.parent / "csrc" / "cbuild" / "hpcbox_cbuild.py")


def _load_ffi_module(root: Path):
    return _load("_hpcbox_ffi_build", root / "ffi_build.py")


def tracer_sources(root: Path):
    """The tracer's C files: csrc/tracer/*.c without the tests, and from csrc/guestpath guestpath.c,
    owners.c, landlock.c and procmagic.c."""
    gp = _load_ffi_module(root).guestpath_dir()
    own = [p for p in sorted((root / "csrc" / "tracer").glob("*.c")) if not p.name.startswith("test_")]
    return [*own, gp / "guestpath.c", gp / "owners.c", gp / "landlock.c",
            gp / "procmagic.c"], [root / "csrc" / "tracer", gp]


class CBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        cbuild, ffi = load_cbuild(root), _load_ffi_module(root)
        self._tmp = tempfile.mkdtemp(prefix="hpcbox-cbuild-")
        tmp = Path(self._tmp)
        cc = cbuild.Compiler("hpcbox-engine-ptrace", [root, ffi.GUESTPATH, tmp], self.metadata.version)
        module = cc.cffi_module(ffi.ffibuilder, ffi.MODULE, tmp, sources=ffi.SOURCES, includes=ffi.INCLUDES,
                                extra=["-include", str(root / "csrc" / "compat.h")])
        sources, includes = tracer_sources(root)
        tracer = cc.executable(tmp / TRACER, sources, [*includes, cbuild.common_include(root)])
        cbuild.place(self, version, build_data, [module, tracer], package=PACKAGE, machine=cc.machine(),
                     abi3=True)

    def finalize(self, version, build_data, artifact_path):
        # the output folder holds only the wheel: the build files lived in a temporary folder
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
