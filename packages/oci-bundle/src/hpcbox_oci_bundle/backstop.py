"""When the path-translating engines (ptrace, preload) restrict the container's writes with Landlock.

Landlock (Linux 5.13+) is their backstop: a write that the translation missed fails instead of
landing on the host. One side effect cannot be turned off: a process in a Landlock domain may not
ptrace, nor read ``/proc/PID/ns``, ``environ`` or the memory (``process_vm_readv``) of a process in
another domain. MPI ranks started outside the container, one ``hpcbox run`` each (``mpirun``,
``srun``), would then not see each other: Open MPI's single-copy shared-memory transfers (CMA) and
its peer checks fail. Such runs go without the backstop (the translation still keeps their paths
inside); ranks started inside one container share its domain and keep it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing for the checker only (the engines' run paths import this module)
if TYPE_CHECKING:
    from typing import Mapping, Tuple

LANDLOCK_ENV = "HPCBOX_LANDLOCK"  # 0 or off: no backstop (debugging); 1 or on: also for MPI ranks
# Set by the launchers for each rank they start (Open MPI, PMIx (srun --mpi=pmix), PMI-1/2 (MPICH,
# Intel MPI, srun --mpi=pmi2), MVAPICH).
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK")


def landlock_wanted(environ: Mapping[str, str]) -> Tuple[bool, str]:
    """(True, "") when a run with the caller's environment *environ* should use the backstop, else
    (False, why not)."""
    setting = environ.get(LANDLOCK_ENV, "").strip().lower()
    if setting in ("0", "off", "no"):
        return False, f"turned off by {LANDLOCK_ENV}={environ[LANDLOCK_ENV]}"
    if setting in ("1", "on", "yes"):
        return True, ""
    rank = [name for name in RANK_VARIABLES if name in environ]
    try:
        tasks = int(environ.get("SLURM_STEP_NUM_TASKS", "1") or "1")
    except ValueError:
        tasks = 1
    if rank or tasks > 1:
        why = f"${rank[0]}" if rank else f"SLURM_STEP_NUM_TASKS={tasks}"
        return False, (f"off for a parallel job's rank ({why}): Landlock would hide ranks of different "
                       f"containers from each other (MPI's shared-memory copies); {LANDLOCK_ENV}=1 forces it")
    return True, ""
