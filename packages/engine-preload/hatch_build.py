"""Hatch build hook: compile the cffi core (for CPython's stable ABI: one wheel for every CPython
>= 3.9, tag cp39-abi3-manylinux_2_17_<arch>), the LD_PRELOAD library (glibc and musl builds) and
the launcher into the wheel (or in place for editable installs). How it compiles (CC, CFLAGS, the
tag): hpcbox_cbuild.py, shared with the other C packages; what it builds: ffi_build.py."""

import importlib.util
import shutil
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "hpcbox_engine_preload"


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


class CBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        cbuild, builders = load_cbuild(root), _load("_hpcbox_ffi_build", root / "ffi_build.py")
        self._tmp = tempfile.mkdtemp(prefix="hpcbox-cbuild-")
        tmp = Path(self._tmp)
        cc = cbuild.Compiler("hpcbox-engine-preload", [root, builders.GUESTPATH, tmp], self.metadata.version)
        module = cc.cffi_module(builders.ffibuilder, builders.MODULE, tmp, sources=builders.MODULE_SOURCES,
                                includes=builders.INCLUDES)
        built = [module, *builders.build_all(cc, tmp, cbuild.common_include(root))]
        cbuild.place(self, version, build_data, built, package=PACKAGE, machine=cc.machine(), abi3=True)

    def finalize(self, version, build_data, artifact_path):
        # the output folder holds only the wheel: the build files lived in a temporary folder
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
