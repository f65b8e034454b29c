"""MPI, hybrid model: the host's Open MPI (`mpirun` from Debian's openmpi-bin 4.1) starts 4 ranks, each
rank is `hpcbox run` of a Debian 12 container whose own Open MPI 4.1 the program was compiled against
(inside the container, with its mpicc). All ranks must see size 4 and agree on the allreduce.

What each rank needs, found here (docs/hpc.md, "MPI", explains each):

- the OMPI_* and PMIX_* variables mpirun sets for it (`--hostenv`, or `-e NAME` for each);
- to run as the caller's uid/gid (`-u $(id -u):$(id -g)`): the PMIx server in mpirun's daemon drops a
  client whose credentials say another uid, and in a user namespace the default is uid 0;
- mpirun's session directory (under $TMPDIR) bound at the same path, for PMIx's shared-memory store
  (without it PMIx prints "gds_ds12_lock_pthread.c" errors and falls back to messages);
- with the runc engine, where every rank is pid 2 of its own pid namespace, no vader shared memory:
  vader takes a peer's segment for its own when the peer's pid equals its own and crashes; the ranks
  talk over TCP on loopback (OMPI_MCA_btl=self,tcp).

The last test has no mpirun: `srun --mpi=pmix` (Slurm's PMIx plugin) starts the ranks, which then
also need SLURM_*.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from typing import Dict, List

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

# MCA settings per engine (see the module docstring): the pid namespace of the runc engine rules out
# vader; ptrace and preload ranks are host processes of one user namespace, so Open MPI's defaults
# (vader shared memory with CMA single-copy) work.
ENGINE_MCA: Dict[str, Dict[str, str]] = {"runc": {"OMPI_MCA_btl": "self,tcp"}, "ptrace": {}, "preload": {}}
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
    env = hpcbox_env(TMPDIR=str(session_dir), **ENGINE_MCA[engine_name], **ROOT_OK)
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
    env = hpcbox_env(TMPDIR=str(session_dir), **ENGINE_MCA[engine], **ROOT_OK)
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
                             extra_env={"TMPDIR": str(tmp_path), **ENGINE_MCA[engine]})
    _check_ranks(proc)
