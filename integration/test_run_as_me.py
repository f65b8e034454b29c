"""`hpcbox run --as-me` under every engine, the ``run_as`` setting, and a misspelt container name.

Real containers of the Debian 12 test image, run as the calling user (unprivileged in CI).
"""

from __future__ import annotations

import json
import os

import pytest
import test_run_common as common
from test_cli_common import hpcbox_env, ok, one_error

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian


@pytest.fixture(params=common.RUN_ENGINES)
def engine(request) -> str:
    return request.param


def test_as_me_keeps_ids_environment_home_and_cwd(run_store, shared_debian, engine, tmp_path):
    args = common.engine_args(run_store, engine)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "dotfile").write_text("from home\n")
    (work / "input.txt").write_text("from pwd\n")
    env = hpcbox_env(HOME=str(home), OMP_NUM_THREADS="3", PWD=str(work))
    script = "id -u; id -g; pwd; echo $HOME; echo $OMP_NUM_THREADS; cat ~/dotfile input.txt; touch made-here"
    proc = ok(run_store("run", *args, "--as-me", shared_debian, "sh", "-c", script, env=env, cwd=str(work)))
    assert proc.stdout.splitlines() == [str(os.getuid()), str(os.getgid()), str(work), str(home), "3",
                                        "from home", "from pwd"]
    made = work / "made-here"
    assert made.is_file() and made.stat().st_uid == os.getuid()  # written as me, in my directory


def test_run_as_setting_and_as_root(run_store, shared_debian, engine, tmp_path):
    args = common.engine_args(run_store, engine)
    env = hpcbox_env(HPCBOX_RUN_AS="me")
    proc = ok(run_store("run", *args, shared_debian, "id", "-u", env=env, cwd=str(tmp_path)))
    assert proc.stdout.strip() == str(os.getuid())
    assert ok(run_store("run", *args, "--as-root", shared_debian, "id", "-u", env=env)).stdout.strip() == "0"
    info = json.loads(ok(run_store("info", "--json", env=env)).stdout)
    assert info["run_as"]["default"] == "me" and info["run_as"]["set_in"] == "HPCBOX_RUN_AS"


def test_misspelt_container_name_is_not_pulled(run_store, shared_debian):
    error = one_error(run_store("run", "c_nonexist", "true"), 3)
    assert "no such container or image 'c_nonexist'" in error and "hpcbox ps" in error
    error = one_error(run_store("run", "shared-debain", "true"), 3)
    assert "did you mean shared-debian" in error
