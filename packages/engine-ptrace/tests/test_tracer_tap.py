"""The tracer's TAP tests (csrc/tracer/test_tracer.c): syscall table, seccomp program, #!/ELF parsing,
credential rules. Compiled with the strict flags against the same sources the wheel's tracer uses."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]
STRICT = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


@pytest.mark.skipif(CC is None, reason="no C compiler (cc/gcc) on PATH; install gcc")
@pytest.mark.skipif(os.uname().machine not in ("x86_64", "aarch64"), reason="the tracer knows x86_64/aarch64")
def test_tracer_tap_suite_passes(guestpath_dir, tmp_path):
    tracer = PACKAGE / "csrc" / "tracer"
    sources = [str(p) for p in sorted(tracer.glob("*.c")) if p.name != "main.c"]
    exe = tmp_path / "test_tracer"
    subprocess.run([CC, *STRICT, f"-I{tracer}", f"-I{guestpath_dir}", "-o", str(exe), *sources,
                    str(guestpath_dir / "guestpath.c")], check=True)
    extra = [BUSYBOX] if os.path.isfile(BUSYBOX) else []
    proc = subprocess.run([str(exe), *extra], check=False, capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    failed = [line for line in lines if line.startswith(("not ok", "Bail out!"))]
    assert not failed, "\n".join(failed)
    plan = [line for line in lines if line.startswith("1..")]
    assert plan, proc.stdout
    assert int(plan[0][3:]) >= 30
    assert sum(line.startswith("ok ") for line in lines) == int(plan[0][3:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
