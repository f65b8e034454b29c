"""Hatch build hook: compile the C core with cffi into the wheel (or in place for editable installs)."""

import importlib.util
import shutil
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "hpcbox_engine_ptrace"


def _load_builder(root: Path):
    spec = importlib.util.spec_from_file_location("_hpcbox_ffi_build", root / "ffi_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ffibuilder


class CffiBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        with tempfile.TemporaryDirectory(prefix="hpcbox-cffi-") as tmp:
            built = Path(_load_builder(root).compile(tmpdir=tmp, verbose=False))
            if version == "editable":
                # Editable installs import from src/, so the extension must sit there.
                shutil.copy2(built, root / "src" / PACKAGE / built.name)
            else:
                keep = Path(self.directory) / ".cffi" / built.name
                keep.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(built, keep)
                build_data["force_include"][str(keep)] = f"{PACKAGE}/{built.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
