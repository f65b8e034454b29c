"""Hatch build hook: compile the C parts into the wheel (or in place for editable installs):

- the cffi module ``_core`` (the path core, for tests and tools), and
- the tracer executable ``hpcbox-ptrace`` (csrc/tracer/ plus the shared csrc/guestpath/), which the
  engine runs; no JSON reaches C, Python drives it through its argv.
"""

import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "hpcbox_engine_ptrace"
TRACER = "hpcbox-ptrace"
STRICT = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]


def _load_ffi_module(root: Path):
    spec = importlib.util.spec_from_file_location("_hpcbox_ffi_build", root / "ffi_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tracer_sources(root: Path):
    """The tracer's C files: csrc/tracer/*.c without the tests, and guestpath.c."""
    gp = _load_ffi_module(root).guestpath_dir()
    own = [p for p in sorted((root / "csrc" / "tracer").glob("*.c")) if not p.name.startswith("test_")]
    return [*own, gp / "guestpath.c"], [root / "csrc" / "tracer", gp]


def build_tracer(root: Path, out_dir: str) -> Path:
    out = Path(out_dir) / TRACER
    cc = os.environ.get("CC", "cc")
    sources, includes = tracer_sources(root)
    subprocess.run([cc, *STRICT, *(f"-I{d}" for d in includes), "-o", str(out), *map(str, sources)],
                   check=True)
    out.chmod(0o755)
    return out


class CBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        with tempfile.TemporaryDirectory(prefix="hpcbox-cbuild-") as tmp:
            built = [Path(_load_ffi_module(root).ffibuilder.compile(tmpdir=tmp, verbose=False)),
                     build_tracer(root, tmp)]
            for path in built:
                if version == "editable":
                    # Editable installs import from src/, so the built files must sit there.
                    shutil.copy2(path, root / "src" / PACKAGE / path.name)
                else:
                    keep = Path(self.directory) / ".cbuild" / path.name
                    keep.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, keep)
                    build_data["force_include"][str(keep)] = f"{PACKAGE}/{path.name}"
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
