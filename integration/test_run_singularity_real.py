"""`hpcbox run` through the singularity engine and a real Apptainer, unprivileged: the host's
apptainer/singularity when there is one, else Debian unstable's from the userland that
scripts/prepare-test-inputs makes (run by packages/engine-singularity/tests/apptainer-in-userland).
udocker's S1 mode (`setup --execmode=S1`) selects it for a container."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian

ROOT = Path(__file__).resolve().parent.parent
IN_USERLAND = ROOT / "packages/engine-singularity/tests/apptainer-in-userland"


def _binary() -> str:
    for name in ("apptainer", "singularity"):
        found = shutil.which(name)
        if found:
            return found
    inputs = Path(os.environ.get("HPCBOX_TEST_INPUTS") or "/var/cache/hpcbox-test-inputs")
    userland = Path(os.environ.get("HPCBOX_APPTAINER_USERLAND") or inputs / "apptainer-sid")
    if not (userland / "usr/bin/apptainer").exists():
        pytest.skip(f"no apptainer/singularity on PATH and no Apptainer userland at {userland} "
                    "(run: sudo scripts/prepare-test-inputs)")
    return str(IN_USERLAND)


@pytest.fixture(scope="module")
def env():
    return hpcbox_env(HPCBOX_SINGULARITY=_binary())


def test_run_debian_through_real_apptainer(run_store, shared_debian, tmp_path, env):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from the host\n")
    os.chmod(tmp_path, 0o755)
    proc = ok(run_store("run", "--engine", "singularity", "-v", f"{data}:/data", "-w", "/data", "-e", "X=1",
                        shared_debian, "sh", "-c", 'cat /etc/debian_version in.txt; echo "$X"; echo out > o',
                        env=env))
    assert proc.stdout.splitlines()[1:] == ["from the host", "1"]
    assert proc.stdout.split(".")[0] == "12"
    assert (data / "o").read_text() == "out\n"
    proc = run_store("run", "--engine", "singularity", shared_debian, "sh", "-c", "exit 7", env=env)
    assert proc.returncode == 7, proc.stderr


def test_udocker_s1_mode_selects_it(run_store, env):
    name = ok(run_store("create", "--name", "s1-real", "debian")).stdout.strip()
    ok(run_store("setup", "--execmode=S1", name, env=env))
    proc = ok(run_store("run", "s1-real", "sh", "-c", "cat /proc/self/uid_map", env=env))
    assert proc.stdout.split()[:2] != ["0", "0"]  # a user namespace: apptainer runs unprivileged
    ok(run_store("rm", "s1-real"))
