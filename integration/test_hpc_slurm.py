"""hpcbox under a real Slurm 22.05 (single node on 127.0.0.1, see hpcbox_testing.slurm): srun, sbatch,
scancel, and the container's processes in the job's process tree.

The daemons run as the user running the tests (no root needed; see hpcbox_testing/slurm.py for what
that changes). Each test is parametrised over the engines and skips one that `hpcbox info` reports as
unavailable, with its reason.
"""

from __future__ import annotations

import os
import random
import re
import sys
import textwrap
from typing import List

import pytest
import test_run_common as common
from hpcbox_testing import slurm as slurm_module
from hpcbox_testing.mpi import ENGINES, engine_status
from test_cli_common import ok

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian

MISSING = slurm_module.missing_binaries()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"Slurm/munge not installed ({', '.join(MISSING)}): "
                                "apt-get install slurmctld slurmd slurm-client munge")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    cluster = slurm_module.start_cluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def engines(run_store):
    return engine_status(run_store)


@pytest.fixture(params=ENGINES)
def engine(request, engines) -> str:
    """Each engine in turn; skipped, with `hpcbox info`'s reason, where it is not available."""
    available, reason = engines.get(request.param, (False, "hpcbox info does not know this engine"))
    if not available:
        pytest.skip(f"engine {request.param} is not available here: {reason}")
    return request.param


def hpcbox_argv(store) -> List[str]:
    return [sys.executable, "-m", "hpcbox", "--home", str(store.home)]


def not_on_host_check() -> str:
    """Shell that prints 'in-container' only where srun (on this host) is absent: the container's rootfs."""
    return 'if command -v srun >/dev/null; then echo on-host; else echo in-container; fi'


def test_srun_two_tasks_each_run_a_container(slurm_cluster, run_store, shared_debian, engine):
    script = f'echo "task $SLURM_PROCID of $SLURM_NTASKS in job $SLURM_JOB_ID $({not_on_host_check()})"'
    proc = slurm_cluster.run(["srun", "-n", "2", *hpcbox_argv(run_store), "run", "--engine", engine,
                              "-e", "SLURM_PROCID", "-e", "SLURM_NTASKS", "-e", "SLURM_JOB_ID",
                              shared_debian, "sh", "-c", script])
    assert proc.returncode == 0, f"{proc.stderr}\n{slurm_cluster.log_tail()}"
    lines = sorted(proc.stdout.splitlines())
    assert len(lines) == 2, proc.stdout
    job_id = lines[0].split()[6]
    assert lines == [f"task 0 of 2 in job {job_id} in-container", f"task 1 of 2 in job {job_id} in-container"]


def test_srun_passes_the_container_exit_status(slurm_cluster, run_store, shared_debian, engine):
    proc = slurm_cluster.run(["srun", "-n", "1", *hpcbox_argv(run_store), "run", "--engine", engine,
                              shared_debian, "sh", "-c", "exit 7"])
    assert proc.returncode == 7, proc.stderr


def test_sbatch_script_pulls_creates_and_runs(slurm_cluster, registry_http, engine, tmp_path):
    pushed = registry_http.push("debian12", f"hpcbox/sbatch-{engine}", "1")
    home = tmp_path / "job-home"  # a store of its own: the job pulls for real
    hpcbox = " ".join(hpcbox_argv(common.RunStore(home)))
    out = tmp_path / "job.out"
    script = tmp_path / "job.sh"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        #SBATCH --job-name=hpcbox-sbatch
        #SBATCH --ntasks=1
        #SBATCH --output={out}
        set -e
        {hpcbox} pull -q {pushed.ref}
        {hpcbox} create --name work {pushed.ref}
        {hpcbox} run --engine {engine} -e SLURM_JOB_ID work sh -c \\
            'echo "job $SLURM_JOB_ID: $(cat /etc/debian_version) $({not_on_host_check()})"; exit 3'
        """))
    job_id = slurm_cluster.sbatch(script)
    record = slurm_cluster.wait_job(job_id)
    output = out.read_text()
    assert record["JobState"] == "FAILED", (record, output)
    assert record["ExitCode"] == "3:0", (record, output)  # the container's status is the job's
    last = output.splitlines()[-1]  # after what pull -q and create print: the image and the container id
    assert re.fullmatch(rf"job {job_id}: 12\.[0-9]+ in-container", last), output
    comp = slurm_module.wait_for(lambda: slurm_cluster.jobcomp(job_id), deadline_s=60)
    assert comp is not None and comp["ExitCode"] == "3:0" and comp["JobState"] == "FAILED", comp
    containers = ok(common.RunStore(home)("ps", "--json")).stdout
    assert '"work"' in containers


def _container_sleeper(marker: int) -> str:
    """A container command whose processes all ignore SIGTERM: a shell, a child and a grandchild."""
    return (f"trap '' TERM; sleep {marker} & sh -c 'sleep {marker} & wait' & echo started; wait")


def _sleepers(marker: int) -> List[int]:
    return slurm_module.running("sleep", str(marker))


def test_job_processes_descend_from_slurmstepd_and_scancel_leaves_none(
        slurm_cluster, run_store, shared_debian, engine, tmp_path):
    marker = random.randint(100000, 999999)
    script = tmp_path / "long.sh"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        #SBATCH --output={tmp_path / 'long.out'}
        exec srun {' '.join(hpcbox_argv(run_store))} run --engine {engine} {shared_debian} \\
            sh -c "{_container_sleeper(marker)}"
        """))
    job_id = slurm_cluster.sbatch(script)
    try:
        sleepers = slurm_module.wait_for(lambda: len(_sleepers(marker)) == 2 and _sleepers(marker), 120)
        assert sleepers, f"the container's sleeps never showed up\n{slurm_cluster.log_tail()}"
        listed = slurm_cluster.listpids(job_id)
        for pid in sleepers:
            chain = slurm_module.ancestry(pid)
            names = [name for _, name in chain]
            assert "slurmstepd" in names, chain  # the same process tree: no daemon in between
            assert pid in listed, (pid, listed)  # and the proctrack plugin counts it as the job's
    finally:
        ok(slurm_cluster.run(["scancel", job_id]))
    record = slurm_cluster.wait_job(job_id)
    assert record["JobState"] == "CANCELLED", record
    left = slurm_module.wait_for(lambda: not slurm_module.processes_with(str(marker)),
                                 deadline_s=slurm_cluster.kill_wait + 60)
    assert left, f"processes left after scancel: {slurm_module.processes_with(str(marker))}"


def test_cluster_runs_jobs_as_the_caller(slurm_cluster):
    """The fixture itself: an ordinary srun works and its task is the test user's."""
    proc = slurm_cluster.run(["srun", "-n", "2", "id", "-u"])
    assert proc.returncode == 0, f"{proc.stderr}\n{slurm_cluster.log_tail()}"
    assert proc.stdout.split() == [str(os.getuid())] * 2
