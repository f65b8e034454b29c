"""MPI, hybrid model: the host's Open MPI (`mpirun` from Debian's openmpi-bin 4.1, or Slurm's
`srun --mpi=pmix`) starts the ranks, each rank is `hpcbox run` of a Debian 12 container whose own Open
MPI 4.1 the programs were compiled against (inside the container, with its mpicc).

With no flags at all (the ping-pong tests) hpcbox sees from the rank's variables that it is one rank
of a job (MPI mode, docs/hpc.md section 2): it runs the rank as the caller, binds the launcher's
session directories and /dev/shm, and under runc keeps the host's pid and ipc namespaces and puts all
ranks of the job on the node into one user namespace, so that Open MPI's default transports work,
shared memory (vader) with single-copy transfers (CMA) included. The ping-pong reports whether both
ranks are in one user namespace and see each other's pids, which is what CMA needs.

The older recipe (`-u $(id -u):$(id -g)`, the session directory bound by hand, only the OMPI_*/PMIX_*
variables passed) still works and is tested too; a rank that cannot reach its launcher fails at once
with the reason, never inside MPI_Init (where mpirun would wait for ever).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from typing import List

import pytest
import test_hpc_slurm as hpc_slurm
import test_run_common as common
from hpcbox_testing import mpi as mpi_module
from hpcbox_testing.images import MissingInputError
from test_cli_common import hpcbox_env, ok

run_store = common.run_store  # fixtures
engines = hpc_slurm.engines
engine = hpc_slurm.engine
slurm_cluster = hpc_slurm.slurm_cluster
MPIRUN = shutil.which("mpirun")
RANKS = 4

pytestmark = pytest.mark.skipif(MPIRUN is None, reason="the host has no mpirun: apt-get install openmpi-bin")

# mpirun refuses to run as root unless told (the tests are meant for an ordinary user, but may run as root)
ROOT_OK = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"} if os.geteuid() == 0 else {}


@pytest.fixture(scope="session")
def mpi_container(run_store, registry_http, test_images) -> str:
    """A container of the MPI image, pulled from the loopback registry, with /app/mpi_program built inside."""
    try:
        layout = mpi_module.mpi_layout(test_images)
    except MissingInputError as error:
        pytest.skip(str(error))
    ref = f"{registry_http.host}/hpcbox/mpi:1"
    skopeo = shutil.which("skopeo") or "skopeo"
    subprocess.run([skopeo, "copy", "--quiet", *registry_http.skopeo_dest_args(), f"oci:{layout}:latest",
                    f"docker://{ref}"], check=True, capture_output=True, timeout=600)
    ok(run_store("pull", "-q", ref, timeout=600))
    name = "mpi"
    ok(run_store("create", "--name", name, ref, timeout=600))
    mpi_module.compile_in_container(run_store, name)
    return name


def _mpirun(store, container: str, engine_name: str, session_dir, env_args: List[str]):
    env = hpcbox_env(TMPDIR=str(session_dir), **ROOT_OK)
    argv = [MPIRUN, "--oversubscribe", "--timeout", "300", "-np", str(RANKS),
            sys.executable, "-m", "hpcbox", "--home", str(store.home), "run", "--engine", engine_name,
            *env_args, "-u", f"{os.getuid()}:{os.getgid()}", "-v", f"{session_dir}:{session_dir}",
            container, mpi_module.PROGRAM_IN_CONTAINER]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400, check=False)


def _check_ranks(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = sorted(line for line in proc.stdout.splitlines() if line.startswith("rank "))
    expected_sum = RANKS * (RANKS + 1) // 2
    host = socket.gethostname()
    expected = [f"rank {r} size {RANKS} sum {expected_sum} host {host}" for r in range(RANKS)]
    assert lines == expected, proc.stdout


def test_host_mpirun_ranks_in_containers_with_hostenv(run_store, mpi_container, engine, tmp_path):
    _check_ranks(_mpirun(run_store, mpi_container, engine, tmp_path, ["--hostenv"]))


def test_mpi_variables_pass_by_default(run_store, mpi_container, engine, tmp_path):
    """`hpcbox run` passes the host's OMPI_*/PMIX_*/PMI_*/SLURM_*/PBS_* variables by default; with
    --no-batch-env no rank joins the job, which shows those variables are what joins it: each rank is
    a singleton (under runc the singletons, all pid 2 of their namespaces, may also fail on each
    other's session files in the container's shared /tmp)."""
    _check_ranks(_mpirun(run_store, mpi_container, engine, tmp_path, []))
    proc = _mpirun(run_store, mpi_container, engine, tmp_path, ["--no-batch-env"])
    assert f"size {RANKS}" not in proc.stdout, proc.stdout
    if engine != "runc":
        assert proc.stdout.count("rank 0 size 1 ") == RANKS, f"{proc.stdout}\n{proc.stderr}"


def _rank_wrapper(path, store, engine_name: str, *, binds: List[str], prefixes: str, container: str):
    """A script that runs one rank in the container, passing exactly the variables named PREFIX_*."""
    path.write_text(
        "#!/bin/sh\n"
        f"exec {sys.executable} -m hpcbox --home {store.home} run --engine {engine_name} "
        f"-u {os.getuid()}:{os.getgid()} {' '.join(f'-v {b}:{b}' for b in binds)} "
        f"$(env | sed -n 's/^\\(\\({prefixes}\\)_[A-Za-z0-9_]*\\)=.*/-e \\1/p') "
        f"{container} {mpi_module.PROGRAM_IN_CONTAINER}\n")
    path.chmod(0o755)
    return path


def test_only_ompi_and_pmix_variables_need_to_pass(run_store, mpi_container, engine, tmp_path):
    """Each rank passes exactly the OMPI_*/PMIX_* names mpirun gave it (a wrapper writes the -e list)."""
    session_dir = tmp_path / "session"
    session_dir.mkdir()
    wrapper = _rank_wrapper(tmp_path / "rank.sh", run_store, engine, binds=[str(session_dir)],
                            prefixes="OMPI\\|PMIX", container=mpi_container)
    env = hpcbox_env(TMPDIR=str(session_dir), **ROOT_OK)
    argv = [MPIRUN, "--oversubscribe", "--timeout", "300", "-np", str(RANKS), str(wrapper)]
    _check_ranks(subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400, check=False))


@pytest.mark.skipif(bool(hpc_slurm.MISSING), reason="Slurm/munge not installed")
def test_srun_mpi_pmix_ranks_in_containers(slurm_cluster, run_store, mpi_container, engine, tmp_path):
    """No mpirun: Slurm's PMIx plugin (srun --mpi=pmix) is the ranks' PMIx server. Open MPI then also
    needs SLURM_* (without them MPI_Init fails: "getting local rank failed"), and Slurm keeps the
    PMIx server's files under SlurmdSpoolDir, which is bound for the shared-memory store."""
    spool = slurm_cluster.workdir / "spool"
    wrapper = _rank_wrapper(tmp_path / "rank.sh", run_store, engine, binds=[str(spool), str(tmp_path)],
                            prefixes="OMPI\\|PMIX\\|SLURM", container=mpi_container)
    proc = slurm_cluster.run(["srun", "--mpi=pmix", "-n", str(RANKS), str(wrapper)], timeout=400,
                             extra_env={"TMPDIR": str(tmp_path)})
    _check_ranks(proc)


# -- no flags: MPI mode ----------------------------------------------------------------------------

MPIRUN_2 = [MPIRUN, "--oversubscribe", "--timeout", "300", "-np", "2"]
PINGPONG_MAX = 65536  # bytes: crosses vader's eager limit and uses its single-copy path; CI stays short


def _pingpong_argv(store, engine_name: str, container: str, *extra: str) -> List[str]:
    return [sys.executable, "-m", "hpcbox", "--home", str(store.home), "run", "--engine", engine_name, *extra,
            container, mpi_module.PINGPONG_IN_CONTAINER, str(PINGPONG_MAX), "2"]


def _check_pingpong(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    # one user namespace and visible pids: what Open MPI's single-copy (CMA) transfers need
    assert "peers userns same pid_visible yes" in lines, proc.stdout
    sizes = [int(line.split()[1]) for line in lines if line.startswith("size ")]
    assert sizes == [8 << i for i in range(PINGPONG_MAX.bit_length() - 3)], proc.stdout
    assert "CMA is not available" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("btl", ["default", "self,vader"])
def test_mpirun_pingpong_with_no_flags(run_store, mpi_container, engine, btl):
    """`mpirun -np 2 hpcbox run IMAGE PROGRAM` as it is: nothing set but what mpirun sets. The second
    case forbids every transport but shared memory, which shows the ranks really use it."""
    env = hpcbox_env(**ROOT_OK)
    if btl != "default":
        env["OMPI_MCA_btl"] = btl
    argv = [*MPIRUN_2, *_pingpong_argv(run_store, engine, mpi_container)]
    _check_pingpong(subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400, check=False))


@pytest.mark.skipif(bool(hpc_slurm.MISSING), reason="Slurm/munge not installed")
def test_srun_pmix_pingpong_with_no_flags(slurm_cluster, run_store, mpi_container, engine):
    """`srun --mpi=pmix -n 2 hpcbox run IMAGE PROGRAM` as it is (Slurm's PMIx plugin is the server)."""
    argv = ["srun", "--mpi=pmix", "-n", "2", *_pingpong_argv(run_store, engine, mpi_container)]
    _check_pingpong(slurm_cluster.run(argv, timeout=400))


@pytest.mark.parametrize("case", [
    (["--net", "none"], "--net none gives the container a loopback of its own"),
    (["-u", "0:0"], "accepts only your own ids"),
], ids=["net-none", "other-uid"])
def test_a_rank_that_cannot_connect_fails_at_once(run_store, mpi_container, engine, case):
    """Each rank stops before its program starts, naming the cause, and mpirun ends with it (a rank
    that got as far as MPI_Init and failed there would leave Open MPI 4.1's mpirun waiting)."""
    extra, message = case
    argv = [*MPIRUN_2, *_pingpong_argv(run_store, engine, mpi_container, *extra)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=hpcbox_env(**ROOT_OK), timeout=120,
                          check=False)
    assert proc.returncode != 0, proc.stdout
    assert "hpcbox: error: this is a rank of an MPI job" in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "size 8 " not in proc.stdout


def test_a_rank_whose_launcher_is_gone_fails_at_once(run_store, mpi_container, engine):
    """A rank's variables naming a PMIx server that no longer listens: hpcbox says so and exits 125."""
    from hpcbox_testing.ports import refused_port

    with refused_port() as port:  # held: no server can take it while the rank starts
        env = hpcbox_env(PMIX_RANK="0", PMIX_NAMESPACE="gone",
                         PMIX_SERVER_URI4=f"gone.0;tcp4://127.0.0.1:{port}")
        proc = subprocess.run(_pingpong_argv(run_store, engine, mpi_container), capture_output=True,
                              text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 125, f"{proc.stdout}\n{proc.stderr}"
    assert f"PMIx server at tcp4://127.0.0.1:{port} is unreachable" in proc.stderr, proc.stderr
