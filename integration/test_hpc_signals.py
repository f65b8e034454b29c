"""Signals from a batch system: SIGTERM, then SIGKILL after a grace period (Slurm's KillWait, PBS's
kill_delay), must stop the container's whole process tree, grandchildren that ignore SIGTERM
included, and the container's exit status must reach the scheduler.

Three ways a batch system delivers them, each tested per engine:

- to the job's whole process group (PBS/Torque, LSF, `timeout`): ``killpg``;
- to the job's top process only (a scheduler or wrapper that knows one pid): ``kill`` of `hpcbox run`;
- Slurm: ``scancel`` (SIGCONT+SIGTERM to every process of the step, SIGKILL after KillWait; see also
  test_hpc_slurm.py) and ``scancel --signal=TERM`` (the program's handler runs, its status is the job's).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from typing import List

import pytest
import test_hpc_slurm as hpc_slurm
import test_run_common as common
from hpcbox_testing import slurm as slurm_module
from test_cli_common import hpcbox_env, ok

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian
engines = hpc_slurm.engines
engine = hpc_slurm.engine
slurm_cluster = hpc_slurm.slurm_cluster
MISSING = hpc_slurm.MISSING
GRACE_S = 2  # between SIGTERM and SIGKILL, as KillWait would be


def _tree_ignoring_term(marker: int) -> str:
    """The container's shell, a child and a grandchild all ignore SIGTERM (SIG_IGN survives exec)."""
    return f"trap '' TERM; sleep {marker} & sh -c 'sleep {marker} & wait' & wait"


def _sleepers(marker: int) -> List[int]:
    return slurm_module.running("sleep", str(marker))


def _start(store, engine_name: str, container: str, script: str, *, out=None, volume=None):
    """`hpcbox run` as a batch job's process: leader of its own session and process group. Output goes
    to the file ``out`` (not a pipe: a process left behind would hold a pipe open). The signals these
    tests send get their default action whatever the suite inherited (under nohup SIGHUP is ignored;
    in a script's background job SIGINT and SIGQUIT are), since an ignored signal stays ignored for
    hpcbox and its program, as with exec(2): `env --default-signal` (coreutils >= 8.31) resets them."""
    argv = ["env", "--default-signal=HUP,INT,QUIT,TERM", sys.executable, "-m", "hpcbox",
            "--home", str(store.home), "run", "--engine", engine_name,
            *(["-v", f"{volume}:/signal"] if volume else []), container, "sh", "-c", script]
    with open(out or os.devnull, "wb") as sink:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                env=hpcbox_env(), start_new_session=True)


def _started(marker: int, process: subprocess.Popen) -> List[int]:
    sleepers = slurm_module.wait_for(lambda: len(_sleepers(marker)) == 2 and _sleepers(marker), 120)
    if not sleepers:
        process.kill()
        process.wait()
        pytest.fail("the container's two sleeps never showed up")
    return sleepers


def _gone(marker: int) -> bool:
    return bool(slurm_module.wait_for(lambda: not slurm_module.processes_with(str(marker)), 30))


def _cleanup(marker: int, process: subprocess.Popen) -> None:
    for pid in slurm_module.processes_with(str(marker)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if process.poll() is None:
        process.kill()
    process.wait()


def test_term_then_kill_to_the_process_group_stops_the_whole_tree(run_store, shared_debian, engine):
    marker = random.randint(100000, 999999)
    process = _start(run_store, engine, shared_debian, _tree_ignoring_term(marker))
    try:
        sleepers = _started(marker, process)
        os.killpg(process.pid, signal.SIGTERM)
        time.sleep(GRACE_S)  # the grace period; the tree ignores SIGTERM, so it is all still there
        assert _sleepers(marker) == sleepers
        assert process.poll() is None
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
        assert _gone(marker), f"left behind: {slurm_module.processes_with(str(marker))}"
    finally:
        _cleanup(marker, process)




def test_term_then_kill_to_hpcbox_alone_stops_the_whole_tree(run_store, shared_debian, engine):
    """Only `hpcbox run` is signalled: what it started must not outlive it."""
    marker = random.randint(100000, 999999)
    process = _start(run_store, engine, shared_debian, _tree_ignoring_term(marker))
    try:
        _started(marker, process)
        process.send_signal(signal.SIGTERM)  # forwarded to the container's shell, which ignores it
        time.sleep(GRACE_S)
        assert process.poll() is None
        process.kill()
        assert process.wait(timeout=60) == -signal.SIGKILL
        assert _gone(marker), f"left behind: {slurm_module.processes_with(str(marker))}"
    finally:
        _cleanup(marker, process)


def test_term_reaches_the_program_and_its_status_is_hpcbox_status(run_store, shared_debian, engine, tmp_path):
    marker = random.randint(100000, 999999)
    script = f"trap 'echo got-term; exit 42' TERM; sleep {marker} & sleep {marker} & wait"
    out = tmp_path / "out"
    process = _start(run_store, engine, shared_debian, script, out=out)
    try:
        _started(marker, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 42, out.read_text()
        assert out.read_text() == "got-term\n"
    finally:
        _cleanup(marker, process)


def test_children_do_not_outlive_the_program(run_store, shared_debian, engine, tmp_path):
    marker = random.randint(100000, 999999)
    script = f"sleep {marker} & sleep {marker} & while [ ! -e /signal/go ]; do sleep 0.1; done; exit 5"
    process = _start(run_store, engine, shared_debian, script, volume=tmp_path)
    try:
        _started(marker, process)
        (tmp_path / "go").touch()  # the program exits now, its two children still running
        assert process.wait(timeout=120) == 5
        assert _gone(marker), f"left behind: {slurm_module.processes_with(str(marker))}"
    finally:
        _cleanup(marker, process)


def test_a_hangup_to_hpcbox_started_under_nohup_changes_nothing(run_store, shared_debian, engine, tmp_path):
    """`nohup hpcbox run ... &`: SIGHUP to hpcbox (a closed terminal, a wrapper that hangs up) must not
    end the program, as it would not end a program started by nohup."""
    marker = random.randint(100000, 999999)
    script = f"sleep {marker} & sleep {marker} & while [ ! -e /signal/go ]; do sleep 0.1; done; exit 5"
    argv = ["nohup", sys.executable, "-m", "hpcbox", "--home", str(run_store.home), "run", "--engine",
            engine, "-v", f"{tmp_path}:/signal", shared_debian, "sh", "-c", script]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # (no nohup.out)
                               stderr=subprocess.DEVNULL, env=hpcbox_env(), start_new_session=True)
    try:
        sleepers = _started(marker, process)
        process.send_signal(signal.SIGHUP)
        time.sleep(GRACE_S)  # time for a forwarded hangup to end the program (it must not)
        assert _sleepers(marker) == sleepers and process.poll() is None
        (tmp_path / "go").touch()
        assert process.wait(timeout=120) == 5
    finally:
        _cleanup(marker, process)


def _hangup_script(marker: int) -> str:
    return f"sleep {marker} & sleep {marker} & while [ ! -e /signal/go ]; do sleep 0.1; done; exit 5"


def test_a_hangup_to_the_process_group_under_nohup_leaves_the_program_running(
        run_store, shared_debian, engine, tmp_path):
    """`nohup hpcbox run ... &`, then `kill -HUP -PGID` (a closed terminal hangs up its whole session):
    the program ignores it, as exec(2) keeps SIG_IGN for a program started by nohup itself. The
    hangup is delivered to every process of the group (the program's shell included) before `go`
    exists, so a program given SIGHUP's default action would end with 129, never 5."""
    marker = random.randint(100000, 999999)
    argv = ["nohup", sys.executable, "-m", "hpcbox", "--home", str(run_store.home), "run", "--engine",
            engine, "-v", f"{tmp_path}:/signal", shared_debian, "sh", "-c", _hangup_script(marker)]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # (no nohup.out)
                               stderr=subprocess.DEVNULL, env=hpcbox_env(), start_new_session=True)
    try:
        _started(marker, process)
        os.killpg(process.pid, signal.SIGHUP)
        (tmp_path / "go").touch()
        assert process.wait(timeout=120) == 5
    finally:
        _cleanup(marker, process)


def test_a_hangup_to_the_process_group_ends_a_program_started_normally(run_store, shared_debian, engine,
                                                                      tmp_path):
    """Without nohup the program keeps SIGHUP's default action: the same hangup ends it (129)."""
    marker = random.randint(100000, 999999)
    process = _start(run_store, engine, shared_debian, _hangup_script(marker), volume=tmp_path)
    try:
        _started(marker, process)
        os.killpg(process.pid, signal.SIGHUP)
        assert process.wait(timeout=120) == 128 + signal.SIGHUP
    finally:
        _cleanup(marker, process)


def test_untrapped_term_gives_128_plus_15(run_store, shared_debian, engine):
    marker = random.randint(100000, 999999)
    process = _start(run_store, engine, shared_debian, f"sleep {marker} & sleep {marker} & wait")
    try:
        _started(marker, process)
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=120) == 128 + signal.SIGTERM
        assert _gone(marker), f"left behind: {slurm_module.processes_with(str(marker))}"
    finally:
        _cleanup(marker, process)




@pytest.mark.skipif(bool(MISSING), reason=f"Slurm/munge not installed ({', '.join(MISSING)})")
def test_slurm_signal_reaches_the_program_and_its_status_is_the_jobs(
        request, slurm_cluster, run_store, engine, tmp_path):
    container = request.getfixturevalue("shared_debian")
    marker = random.randint(100000, 999999)
    out = tmp_path / "job.out"
    script = tmp_path / "job.sh"
    # Slurm (proctrack/linuxproc) signals a step's processes leaves first: the two sleeps die before the
    # shell gets its own SIGTERM, and a shell whose `wait` has returned would just end with 0, also
    # without any container (3 of 30 runs here). Like a program that checkpoints, this one runs until
    # its SIGTERM comes: the loop after `wait` keeps it there.
    trap = (f"trap 'echo got-term; exit 42' TERM; sleep {marker} & sleep {marker} & wait; "
            f"while :; do sleep 0.1; done")
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        #SBATCH --output={out}
        srun {sys.executable} -m hpcbox --home {run_store.home} run --engine {engine} {container} \\
            sh -c "{trap}"
        """))
    job_id = slurm_cluster.sbatch(script)
    started = slurm_module.wait_for(lambda: len(_sleepers(marker)) == 2, 120)
    if not started:
        slurm_cluster.run(["scancel", job_id])
        pytest.fail(f"the container's two sleeps never showed up\n{slurm_cluster.log_tail()}")
    ok(slurm_cluster.run(["scancel", "--signal=TERM", job_id]))
    record = slurm_cluster.wait_job(job_id)
    output = out.read_text()
    assert "got-term" in output.splitlines(), output
    assert (record["JobState"], record["ExitCode"]) == ("FAILED", "42:0"), (record, output)
    assert _gone(marker), f"left behind: {slurm_module.processes_with(str(marker))}"
