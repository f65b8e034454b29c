"""The C core's own TAP tests (csrc/guestpath/test_guestpath.c), compiled with the strict flags."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

STRICT = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2"]


def _cc():
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(_cc() is None, reason="no C compiler (cc/gcc) on PATH; install gcc")
def test_c_tap_suite_passes(guestpath_dir, tmp_path):
    exe = tmp_path / "test_guestpath"
    subprocess.run(
        [_cc(), *STRICT, "-o", str(exe), str(guestpath_dir / "test_guestpath.c"),
         str(guestpath_dir / "guestpath.c")],
        check=True,
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run([str(exe)], check=False, capture_output=True, text=True, env=env, timeout=60)
    lines = proc.stdout.splitlines()
    failed = [line for line in lines if line.startswith(("not ok", "Bail out!"))]
    assert not failed, "\n".join(failed)
    plan = [line for line in lines if line.startswith("1..")]
    assert plan, proc.stdout
    count = int(plan[0][3:])
    assert count > 50
    assert sum(line.startswith("ok ") for line in lines) == count
    assert proc.returncode == 0, proc.stdout + proc.stderr
