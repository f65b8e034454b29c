"""MPI mode: what `hpcbox run` does when an MPI launcher started it as one rank of a job.

``mpirun -np N hpcbox run IMAGE PROGRAM`` and ``srun --mpi=pmix -n N hpcbox run IMAGE PROGRAM`` work
as they are: :func:`detect` recognises a rank by the variables every launcher sets for it, and
:func:`apply` changes the run's OCI config the way the ranks need (docs/hpc.md, section 2):

- the caller's own uid/gid (unless ``-u`` says otherwise): the PMIx server in the launcher drops a
  client whose socket credentials name another user, and in a user namespace the default is root;
- the launcher's session directories (Open MPI's and PMIx's, named by the rank's own variables) and
  the host's /dev/shm bound at the same paths: PMIx's shared-memory store and Open MPI's
  shared-memory segments are files there, which every rank on the node must see;
- the caller's pid and ipc namespaces (runc engine): shared-memory peers find each other by pid, and
  single-copy transfers (``process_vm_readv``) name the peer by its pid;
- one user namespace for all ranks of the job on this node (runc engine, annotation
  ``org.hpcbox.runc.share-userns``): Open MPI allows single-copy transfers only within one.

Ranks must also reach the launcher's PMIx server: with ``--net none`` a rank has its own loopback
and would wait for a server it cannot reach, so that combination is refused at once.

``--no-batch-env`` turns MPI mode off with the variables (a rank without them is a singleton).
Kept in one place, with no imports beyond the standard library, so that other run modes (e.g. a
"run as me" option) can share it.
"""

from __future__ import annotations

import os

from hpcbox_oci_bundle import contract

TYPE_CHECKING = False  # typing costs ~2 ms: `hpcbox run` imports this module on every start
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional, Tuple

ANNOTATION_SHARE_USERNS = contract.ANNOTATION_RUNC_SHARE_USERNS
# A rank of an MPI job has at least one of these (Open MPI's mpirun, any PMIx server such as
# Slurm's --mpi=pmix, PMI-1/PMI-2 launchers such as Hydra or Slurm's --mpi=pmi2).
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")
# Which job the rank belongs to, most specific first.
JOB_VARIABLES = ("PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "PMI_KVSNAME", "PMI_JOBID")
# Directories the launcher made for the job's ranks on this node.
SESSION_VARIABLES = ("OMPI_MCA_orte_top_session_dir", "PMIX_SERVER_TMPDIR", "PMIX_DSTORE_21_BASE_PATH",
                     "PMIX_DSTORE_ESH_BASE_PATH")
SHM = "/dev/shm"


class Job:
    """The MPI job a rank belongs to, as its environment tells."""

    __slots__ = ("dirs", "key", "servers")

    def __init__(self, key: str, dirs: List[str], servers: List[str]):
        self.key, self.dirs, self.servers = key, dirs, servers


def detect(env: Mapping[str, str]) -> Optional[Job]:
    """The job when *env* is a rank's environment, else None."""
    if not any(env.get(name) for name in RANK_VARIABLES):
        return None
    import hashlib
    ids = [f"{name}={env[name]}" for name in JOB_VARIABLES if env.get(name)]
    if not ids:  # an unknown launcher: its ranks on this node share their parent
        ids = [f"ppid={os.getppid()}"]
    if env.get("SLURM_JOB_ID"):
        ids.append(f"slurm={env['SLURM_JOB_ID']}.{env.get('SLURM_STEP_ID', '')}")
    key = hashlib.sha256("\0".join(ids).encode()).hexdigest()[:24]
    dirs: List[str] = []
    for given in [*(env.get(name, "") for name in SESSION_VARIABLES), SHM]:
        path = os.path.normpath(given) if given.startswith("/") else ""
        if path and os.path.isdir(path) and not any(_inside(path, d) for d in dirs):
            dirs = [d for d in dirs if not _inside(d, path)] + [path]
    servers = sorted({value.split(";", 1)[1] for name, value in env.items()
                      if name.startswith("PMIX_SERVER_URI") and ";" in value})
    return Job(key, dirs, servers)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def user(given: Optional[str], me: Tuple[int, int]) -> str:
    """The ``-u`` value for a rank: the one given, else the caller's own ids *me*."""
    return given if given is not None else f"{me[0]}:{me[1]}"


def check_user(uid: int, gid: int, me: Tuple[int, int]) -> None:
    """A rank must run as the caller: PMIx servers compare the ids a client states (its own view of
    them) with its socket's credentials and drop a client whose ids differ, and Open MPI's mpirun
    then waits for ever for the rank it lost."""
    if (uid, gid) != me:
        from hpcbox.errors import UsageError

        raise UsageError(f"this is a rank of an MPI job, but -u asks for uid {uid} gid {gid} in the "
                         f"container: the launcher's PMIx server accepts only your own ids ({me[0]}:{me[1]})",
                         "drop -u for MPI ranks (they run as you), or give --no-batch-env for a run that "
                         "is not a rank")


def check_servers(job: Job, timeout: float = 5.0) -> None:
    """Connect to each TCP PMIx server the rank was given, at once, so that a rank that cannot reach
    its launcher fails in seconds with the reason instead of inside MPI_Init (where Open MPI's
    mpirun may wait for ever for the lost rank)."""
    import socket

    from hpcbox.errors import HpcboxError

    for uri in job.servers:
        scheme, _, address = uri.partition("://")
        host, _, port = address.rpartition(":")
        if scheme not in ("tcp4", "tcp6", "tcp") or not port.isdigit():
            continue  # e.g. a Unix socket: nothing to connect to before the client does
        host = host.strip("[]")
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
        except OSError as exc:
            raise HpcboxError(f"this is a rank of an MPI job, but its launcher's PMIx server at {uri} is "
                              f"unreachable ({exc.strerror or exc})",
                              "check that mpirun/srun still runs and started this rank on this node",
                              125) from None


def apply(config: Dict[str, Any], job: Job, *, net: str) -> None:
    """Make *config* (the OCI runtime config of a rank, its user chosen by :func:`user`) fit *job*;
    a directory the user binds already stays as the user bound it."""
    from hpcbox.errors import UsageError

    if net == "none":
        where = f" (the launcher's PMIx server is at {', '.join(job.servers)})" if job.servers else ""
        raise UsageError("this is a rank of an MPI job, which must reach its launcher over the host's "
                         f"network, but --net none gives the container a loopback of its own{where}",
                         "drop --net none for MPI ranks")
    binds = {m.get("destination") for m in config["mounts"]}
    for path in job.dirs:
        if path not in binds:
            config["mounts"].append({"destination": path, "type": "bind", "source": path,
                                     "options": ["rbind", "rw"]})
    namespaces = config.setdefault("linux", {}).setdefault("namespaces", [])
    namespaces[:] = [n for n in namespaces if n.get("type") not in ("pid", "ipc")]
    annotations = config.setdefault("annotations", {})
    if annotations.get(contract.ANNOTATION_RUNC_RUNTIME, "builtin") == "builtin":  # runc/crun: theirs
        ids = config["process"]["user"]
        annotations[ANNOTATION_SHARE_USERNS] = f"{job.key}-{ids['uid']}-{ids['gid']}"
