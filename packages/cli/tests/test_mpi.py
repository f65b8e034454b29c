"""MPI mode: a rank's environment turns `hpcbox run` into what the ranks of a job need, and the cases
where a rank could not reach its launcher are refused at once."""

from __future__ import annotations

import socket

import pytest

from hpcbox import mpi, runspec
from hpcbox.errors import HpcboxError, UsageError
from hpcbox.runspec import Caller, RunOptions

CALLER = Caller(4242, 4343, "alice", "lab", "/home/alice", "/bin/bash")


def image(**config):
    return {"architecture": "amd64", "os": "linux", "config": config}


@pytest.fixture
def container(tmp_path):
    """A container dir whose rootfs has a user 'app' (1000:1001)."""
    rootfs = tmp_path / "c" / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                       "app:x:1000:1001:App:/srv/app:/bin/sh\n")
    (rootfs / "etc/group").write_text("root:x:0:\nappgrp:x:1001:\n")
    return tmp_path / "c"


def build(container, img, opts, host_env):
    return runspec.build(img, opts, rootfs=str(container / "rootfs"), container_dir=str(container),
                         host_env=host_env, caller=CALLER)


def _mpirun_env(tmp_path, port=40000):
    """What Open MPI 4.1's mpirun gives a rank (the parts MPI mode reads)."""
    top = tmp_path / "ompi.node.4242"
    job = top / "pid.77"
    (job / "pmix_dstor_ds21_77").mkdir(parents=True)
    (job / "pmix_dstor_ds12_77").mkdir()
    return {
        "OMPI_COMM_WORLD_RANK": "1", "PMIX_RANK": "1", "PMIX_NAMESPACE": "1660354561",
        "OMPI_MCA_orte_top_session_dir": str(top), "PMIX_SERVER_TMPDIR": str(job),
        "PMIX_DSTORE_21_BASE_PATH": str(job / "pmix_dstor_ds21_77"),
        "PMIX_DSTORE_ESH_BASE_PATH": str(job / "pmix_dstor_ds12_77"),
        "PMIX_SERVER_URI4": f"1660354560.0;tcp4://127.0.0.1:{port}",
        "PMIX_SERVER_URI21": f"1660354560.0;tcp4://127.0.0.1:{port}",
        "HOME": "/home/alice", "PATH": "/usr/bin",
    }


def test_no_rank_variables_no_mpi_mode(tmp_path):
    assert mpi.detect({"SLURM_JOB_ID": "3", "SLURM_PROCID": "0", "PATH": "/bin"}) is None


def test_a_mpirun_rank_is_detected_with_its_session_directories(tmp_path):
    env = _mpirun_env(tmp_path)
    job = mpi.detect(env)
    assert job is not None
    # nested directories collapse to the outermost one; /dev/shm is always shared
    assert job.dirs == [env["OMPI_MCA_orte_top_session_dir"], "/dev/shm"]
    assert job.servers == ["tcp4://127.0.0.1:40000"]
    other_rank = dict(env, OMPI_COMM_WORLD_RANK="0", PMIX_RANK="0")
    assert mpi.detect(other_rank).key == job.key  # one group per job ...
    assert mpi.detect(dict(env, PMIX_NAMESPACE="99")).key != job.key  # ... and another for another job


def test_srun_pmix_rank_binds_the_slurm_spool_directory(tmp_path):
    spool = tmp_path / "spool" / "pmix.1.0"
    spool.mkdir(parents=True)
    env = {"PMIX_RANK": "0", "PMIX_NAMESPACE": "slurm.pmix.1.0", "SLURM_JOB_ID": "1", "SLURM_STEP_ID": "0",
           "PMIX_SERVER_TMPDIR": f"{spool}/", "PMIX_DSTORE_21_BASE_PATH": f"{spool}//pmix_dstor_ds21_9"}
    job = mpi.detect(env)
    assert job.dirs == [str(spool), "/dev/shm"]


def test_a_rank_runs_as_the_caller_with_shared_dirs_and_namespaces(container, tmp_path):
    env = _mpirun_env(tmp_path)
    config = build(container, image(User="app"), RunOptions(["/app/prog"]), host_env=env)
    assert config["process"]["user"] == {"uid": CALLER.uid, "gid": CALLER.gid}  # not the image's User
    assert f"HOME={CALLER.home}" in config["process"]["env"]
    binds = {m["destination"]: m["source"] for m in config["mounts"]}
    assert binds[env["OMPI_MCA_orte_top_session_dir"]] == env["OMPI_MCA_orte_top_session_dir"]
    assert binds["/dev/shm"] == "/dev/shm"
    types = [n["type"] for n in config["linux"]["namespaces"]]
    assert "pid" not in types and "ipc" not in types and "user" in types and "mount" in types
    group = config["annotations"][mpi.ANNOTATION_SHARE_USERNS]
    assert group == f"{mpi.detect(env).key}-{CALLER.uid}-{CALLER.gid}"


def test_no_batch_env_is_no_mpi_mode(container, tmp_path):
    config = build(container, image(), RunOptions(["/p"], batchenv=False), host_env=_mpirun_env(tmp_path))
    assert config["process"]["user"] == {"uid": 0, "gid": 0}
    assert mpi.ANNOTATION_SHARE_USERNS not in config["annotations"]
    assert "pid" in [n["type"] for n in config["linux"]["namespaces"]]


def test_a_users_own_bind_of_a_session_directory_is_kept(container, tmp_path):
    env = _mpirun_env(tmp_path)
    top = env["OMPI_MCA_orte_top_session_dir"]
    config = build(container, image(), RunOptions(["/p"], volumes=[f"{top}:{top}:ro"]), host_env=env)
    assert [m["options"] for m in config["mounts"] if m["destination"] == top] == [["rbind", "ro"]]


def test_the_callers_own_ids_may_be_given(container, tmp_path):
    opts = RunOptions(["/p"], user=f"{CALLER.uid}:{CALLER.gid}")
    config = build(container, image(), opts, host_env=_mpirun_env(tmp_path))
    assert config["process"]["user"] == {"uid": CALLER.uid, "gid": CALLER.gid}


@pytest.mark.parametrize("user", ["0:0", "app", f"{CALLER.uid}:0"])
def test_other_ids_for_a_rank_are_refused(container, tmp_path, user):
    with pytest.raises(UsageError, match=r"rank of an MPI job.*accepts only your own ids.*drop -u"):
        build(container, image(), RunOptions(["/p"], user=user), host_env=_mpirun_env(tmp_path))


def test_net_none_for_a_rank_is_refused(container, tmp_path):
    with pytest.raises(UsageError, match=r"loopback of its own.*tcp4://127.0.0.1:40000.*drop --net none"):
        build(container, image(), RunOptions(["/p"], net="none"), host_env=_mpirun_env(tmp_path))


def test_a_delegated_runtime_gets_no_group_annotation(container, tmp_path):
    config = build(container, image(), RunOptions(["/p"], runtime="runc"), host_env=_mpirun_env(tmp_path))
    assert mpi.ANNOTATION_SHARE_USERNS not in config["annotations"]


def test_a_listening_server_passes_the_check(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        mpi.check_servers(mpi.detect(_mpirun_env(tmp_path, server.getsockname()[1])))


def test_an_unreachable_server_fails_at_once_with_the_reason(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(HpcboxError, match=rf"PMIx server at tcp4://127.0.0.1:{port} is unreachable"):
            mpi.check_servers(mpi.detect(_mpirun_env(tmp_path, port)))
