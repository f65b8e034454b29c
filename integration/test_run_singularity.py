"""`hpcbox run` through the singularity engine, end to end through the CLI.

Debian 12 has no Apptainer, so this drives the CLI against the engine package's stand-in binary
(it answers --version and `help exec` like Apptainer 1.2.5, records each exec, then runs the
command on the host). What the real binary does with the same argv is covered by the engine
package's own real-binary tests where one is installed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok

run_store = common.run_store  # fixtures
STANDIN = Path(__file__).resolve().parents[1] / "packages/engine-singularity/tests/singularity_standin.py"


def _standin_module():
    spec = importlib.util.spec_from_file_location("singularity_standin", STANDIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def apptainer(tmp_path):
    fake = _standin_module().make_standin(tmp_path / "bin", "apptainer-1.2.5")
    return fake, hpcbox_env(HPCBOX_SINGULARITY=str(fake.path))


def test_run_engine_singularity_passes_rootfs_env_and_exit_code(run_store, apptainer):
    fake, env = apptainer
    before = run_store.ids()  # whatever other tests of this store left: not this test's business
    proc = run_store("run", "--rm", "--engine", "singularity", "-e", "GREETING=hello", "busybox",
                     "sh", "-c", 'echo "$GREETING"; exit 3', env=env)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "hello\n"
    record = fake.last()
    assert record["argv"][1] == "exec"
    rootfs = Path(record["argv"][record["argv"].index("sh") - 1])
    assert rootfs.name == "rootfs" and (run_store.home / "containers") in rootfs.parents
    assert record["env"].get("APPTAINERENV_GREETING") == "hello"
    assert run_store.ids() == before  # --rm removed it


def test_setup_execmode_s1_selects_singularity(run_store, apptainer):
    fake, env = apptainer
    name = "s1-box"
    ok(run_store("create", "--name", name, "busybox"))
    try:
        ok(run_store("setup", "--execmode=S1", name, env=env))
        before = len(fake.records())
        proc = ok(run_store("run", name, "echo", "via-s1", env=env))
        assert proc.stdout == "via-s1\n"
        assert len(fake.records()) == before + 1
        info = json.loads(ok(run_store("info", "--json", env=env)).stdout)
        assert info["engines"]["singularity"]["available"] is True
    finally:
        ok(run_store("rm", "-f", name))
