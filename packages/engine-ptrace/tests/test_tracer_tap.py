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
                    str(guestpath_dir / "guestpath.c"), str(guestpath_dir / "owners.c"),
                    str(guestpath_dir / "landlock.c"), str(guestpath_dir / "procmagic.c")], check=True)
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


CROSS = shutil.which("aarch64-linux-gnu-gcc")
QEMU = shutil.which("qemu-aarch64")


@pytest.mark.skipif(os.uname().machine != "x86_64" or not (CROSS and QEMU),
                    reason="the aarch64 check needs aarch64-linux-gnu-gcc and qemu-aarch64 "
                           "(Debian: gcc-aarch64-linux-gnu, qemu-user)")
def test_tracer_builds_for_aarch64_and_its_tap_suite_passes_there(guestpath_dir, common_include, tmp_path):
    """The other column of the table: the tracer compiles for aarch64 with the strict flags, and the
    TAP suite (numbers against aarch64's <sys/syscall.h>, the BPF program) passes under qemu-user."""
    tracer = PACKAGE / "csrc" / "tracer"
    common = [*STRICT, f"-I{tracer}", f"-I{guestpath_dir}", f"-I{common_include}",
              str(guestpath_dir / "guestpath.c"), str(guestpath_dir / "owners.c"),
              str(guestpath_dir / "landlock.c"), str(guestpath_dir / "procmagic.c")]
    own = [str(p) for p in sorted(tracer.glob("*.c"))]
    subprocess.run([CROSS, "-o", str(tmp_path / "hpcbox-ptrace"), *common,
                    *(p for p in own if not p.endswith("test_tracer.c"))], check=True)
    subprocess.run([CROSS, "-o", str(tmp_path / "test_tracer"), *common,
                    *(p for p in own if not p.endswith("main.c"))], check=True)
    proc = subprocess.run([QEMU, "-L", "/usr/aarch64-linux-gnu", str(tmp_path / "test_tracer")], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "not ok" not in proc.stdout, proc.stdout + proc.stderr
    assert "(aarch64)" in proc.stdout
