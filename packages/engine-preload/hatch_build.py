"""Hatch build hook: compile the cffi core, the LD_PRELOAD library (glibc and musl builds) and
the launcher into the wheel (or in place for editable installs)."""

import importlib.util
import shutil
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "hpcbox_engine_preload"


def _load_builders(root: Path):
    spec = importlib.util.spec_from_file_location("_hpcbox_ffi_build", root / "ffi_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        builders = _load_builders(root)
        with tempfile.TemporaryDirectory(prefix="hpcbox-cbuild-") as tmp:
            built = [Path(builders.ffibuilder.compile(tmpdir=tmp, verbose=False)), *builders.build_all(tmp)]
            for artefact in built:
                if version == "editable":
                    # Editable installs import from src/, so the binaries must sit there.
                    shutil.copy2(artefact, root / "src" / PACKAGE / artefact.name)
                else:
                    keep = Path(self.directory) / ".cbuild" / artefact.name
                    keep.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(artefact, keep)
                    build_data["force_include"][str(keep)] = f"{PACKAGE}/{artefact.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
