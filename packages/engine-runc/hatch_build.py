"""Hatch build hook: compile the builtin runner `hpcbox-userns` from csrc/ into the wheel
(or into src/ for editable installs). No cffi: Python drives the runner through its argv."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "hpcbox_engine_runc"
RUNNER = "hpcbox-userns"
STRICT = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]


def build_runner(root: Path, out_dir: str) -> Path:
    out = Path(out_dir) / RUNNER
    cc = os.environ.get("CC", "cc")
    sources = [str(p) for p in sorted((root / "csrc").glob("*.c"))]
    subprocess.run([cc, *STRICT, "-o", str(out), *sources], check=True)
    out.chmod(0o755)
    return out


class RunnerBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        with tempfile.TemporaryDirectory(prefix="hpcbox-cbuild-") as tmp:
            runner = build_runner(root, tmp)
            if version == "editable":
                # Editable installs import from src/, so the runner must sit there.
                shutil.copy2(runner, root / "src" / PACKAGE / RUNNER)
            else:
                keep = Path(self.directory) / ".cbuild" / RUNNER
                keep.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(runner, keep)
                build_data["force_include"][str(keep)] = f"{PACKAGE}/{RUNNER}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
