"""Hatch build hook: compile the builtin runner `hpcbox-userns` from csrc/ into the wheel
(or into src/ for editable installs). No cffi: Python drives the runner through its argv, so the
wheel holds no Python extension (py3-none-manylinux_2_17_<arch>). How it compiles (CC, CFLAGS,
static linking, the tag): hpcbox_cbuild.py, shared with the other C packages."""

import importlib.util
import shutil
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "hpcbox_engine_runc"
RUNNER = "hpcbox-userns"


def load_cbuild(root: Path):
    """hpcbox_cbuild.py: the sdist's copy beside this file, else the repository's csrc/cbuild/."""
    for candidate in (root / "hpcbox_cbuild.py", root.parent.parent / "csrc" / "cbuild" / "hpcbox_cbuild.py"):
        if candidate.is_file():
            spec = importlib.util.spec_from_file_location("_hpcbox_cbuild", candidate)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise SystemExit(f"{PACKAGE}: hpcbox_cbuild.py not found beside hatch_build.py nor in csrc/cbuild/ "
                     "of the repository; build from the hpcbox repository or from its sdist")


class RunnerBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        cbuild = load_cbuild(root)
        self._tmp = tempfile.mkdtemp(prefix="hpcbox-cbuild-")
        cc = cbuild.Compiler("hpcbox-engine-runc", [root, self._tmp], self.metadata.version)
        runner = cc.executable(Path(self._tmp) / RUNNER, sorted((root / "csrc").glob("*.c")),
                               [cbuild.common_include(root)])
        cbuild.place(self, version, build_data, [runner], package=PACKAGE, machine=cc.machine(), abi3=False)

    def finalize(self, version, build_data, artifact_path):
        # the output folder holds only the wheel: the build files lived in a temporary folder
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
