"""A single-node Slurm cluster on 127.0.0.1 (Debian's ``munged``, ``slurmctld``, ``slurmd``), started
by the ordinary user who runs the tests.

Nothing here needs root: munged runs with its own key, socket and log under the cluster's directory,
and slurm.conf names the calling user as ``SlurmUser`` and ``SlurmdUser``, so slurmctld and slurmd
run as that user too and every job runs as that user (the only user who submits here). What differs
from a real site is only that slurmstepd starts as the job's user instead of root and dropping
privileges is a no-op; the job's process tree (slurmstepd -> job script -> srun -> slurmstepd ->
task) is the same, and so are signals, KillWait, exit codes and ``scontrol listpids``.

- ``ProctrackType=proctrack/linuxproc`` (tracks a step's processes by their parent chain in /proc;
  proctrack/cgroup needs root and a writable cgroup hierarchy), ``TaskPlugin=task/none``,
  ``JobAcctGatherType=jobacct_gather/linux`` (``sstat`` works), no slurmdbd (``sacct`` says
  "accounting storage is disabled"), ``JobCompType=jobcomp/filetxt`` writes one line per finished
  job with its state and ``ExitCode`` to ``jobcomp_log``.
- ``KillWait`` (the grace between SIGTERM and SIGKILL when a job is cancelled or times out) is a
  parameter, 5 s by default here instead of Slurm's 30.
- The node claims ``cpus`` CPUs (``SlurmdParameters=config_overrides``) so a few jobs fit at once on
  a 2-core machine.

``SlurmCluster(workdir).start()``; ``.env`` is the environment for the client commands
(``SLURM_CONF`` set), ``.run([...])`` runs one; ``.sbatch()``, ``.job()``, ``.wait_job()``,
``.listpids()``; ``.stop()`` cancels what is left and stops the daemons (``.log_tail()`` for reports).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Set

from .ports import LOOPBACK, free_ports

NODE = "localhost"
PARTITION = "debug"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("srun", "sbatch", "scancel", "scontrol", "sinfo", "squeue")
FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                   "BOOT_FAIL", "DEADLINE"}


class SlurmUnavailable(RuntimeError):
    """Slurm or munge is not installed here (the message says which Debian package to install)."""


def missing_binaries() -> List[str]:
    """Daemons and client commands this fixture needs that are not installed."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [name for name in DAEMONS + CLIENTS if shutil.which(name, path=path) is None]


def _which(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if found is None:
        raise SlurmUnavailable(f"'{name}' not found: install the Debian packages slurmctld slurmd "
                               f"slurm-client munge")
    return found


def parse_record(line: str) -> Dict[str, str]:
    """``scontrol -o show job`` / jobcomp line -> dict (values never contain spaces there)."""
    record: Dict[str, str] = {}
    for item in line.split():
        key, sep, value = item.partition("=")
        if sep:
            record[key] = value
    return record


class SlurmCluster:
    """One controller and one compute node on loopback, all daemons running as the calling user."""

    def __init__(self, workdir: Path, *, kill_wait: int = 5, cpus: Optional[int] = None):
        self.workdir = Path(workdir)
        self.kill_wait = kill_wait
        self.cpus = cpus or max(4, os.cpu_count() or 1)
        self.user = getpass.getuser()
        self.conf = self.workdir / "slurm.conf"
        self.munge_socket = self.workdir / "munge" / "munge.socket"
        self.log_dir = self.workdir / "log"
        self.jobcomp_log = self.log_dir / "jobcomp.log"
        self._processes: Dict[str, subprocess.Popen] = {}

    # -- configuration -----------------------------------------------------------------------------
    def _slurm_conf(self, ctld_port: int, slurmd_port: int) -> str:
        w = self.workdir
        lines = [
            "ClusterName=hpcbox",
            f"SlurmctldHost={NODE}({LOOPBACK})",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            f"SlurmUser={self.user}",
            f"SlurmdUser={self.user}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={w / 'state'}",
            f"SlurmdSpoolDir={w / 'spool'}",
            f"SlurmctldPidFile={w / 'slurmctld.pid'}",
            f"SlurmdPidFile={w / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.log_dir / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/linux",
            "JobAcctGatherFrequency=task=5",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp_log}",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SlurmdParameters=config_overrides",
            "MpiDefault=none",
            "ReturnToService=2",
            f"KillWait={self.kill_wait}",
            "MinJobAge=3600",
            "InactiveLimit=0",
            f"NodeName={NODE} NodeAddr={LOOPBACK} CPUs={self.cpus} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        ]
        return "\n".join(lines) + "\n"

    @property
    def env(self) -> Dict[str, str]:
        """The caller's environment for Slurm's client commands: SLURM_CONF set, no outer job's SLURM_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["SLURM_CONF"] = str(self.conf)
        return env

    # -- lifecycle ---------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: List[str]) -> None:
        with open(self.log_dir / f"{name}.out", "ab") as out:
            self._processes[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                                     stderr=subprocess.STDOUT, env=self.env,
                                                     start_new_session=True)

    def _wait_until(self, what: str, check, deadline_s: float = 60.0) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with status {process.returncode} while waiting for "
                                       f"{what}\n{self.log_tail()}")
            if check():
                return
            time.sleep(0.2)
        raise RuntimeError(f"Slurm: {what} did not happen within {deadline_s:.0f} s\n{self.log_tail()}")

    def start(self) -> SlurmCluster:
        binaries = {name: _which(name) for name in DAEMONS}
        for sub in ("munge", "state", "spool", "log"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir / "munge", 0o700)
        key = self.workdir / "munge" / "munge.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(1024))
        self.conf.write_text(self._slurm_conf(*free_ports(2)))  # two calls of free_port() may agree
        try:
            self._spawn("munged", [binaries["munged"], "--foreground", "--force",
                                   f"--socket={self.munge_socket}", f"--key-file={key}",
                                   f"--log-file={self.log_dir / 'munged.log'}",
                                   f"--pid-file={self.workdir / 'munge' / 'munged.pid'}",
                                   f"--seed-file={self.workdir / 'munge' / 'munged.seed'}"])
            self._wait_until("munged's socket", self.munge_socket.exists)
            self._spawn("slurmctld", [binaries["slurmctld"], "-D", "-f", str(self.conf)])
            self._spawn("slurmd", [binaries["slurmd"], "-D", "-N", NODE, "-f", str(self.conf)])
            self._wait_until(f"node {NODE} idle", self._node_idle)
        except BaseException:
            self.stop()
            raise
        return self

    def _node_idle(self) -> bool:
        proc = self.run(["sinfo", "-h", "-n", NODE, "-o", "%T"], timeout=30)
        return proc.returncode == 0 and proc.stdout.strip() == "idle"

    def stop(self) -> None:
        """Cancel every job left, wait for them to end, then stop the daemons (slurmd first)."""
        if self._processes.get("slurmctld") and self._processes["slurmctld"].poll() is None:
            self.run(["scancel", "--user", self.user], timeout=30)
            end = time.monotonic() + self.kill_wait + 30
            while time.monotonic() < end and self._jobs_left():
                time.sleep(0.3)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self._processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _jobs_left(self) -> bool:
        return bool(self.run(["squeue", "-h", "-o", "%i"], timeout=30).stdout.strip())

    def __enter__(self) -> SlurmCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- client commands ---------------------------------------------------------------------------
    def run(self, argv: List[str], *, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
        """A Slurm client command (``srun``, ``sbatch`` ...) against this cluster; never raises on status."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        env = dict(self.env, **kwargs.pop("extra_env", {}))
        return subprocess.run([_which(argv[0]), *argv[1:]], env=env, timeout=timeout, check=False, **kwargs)

    def sbatch(self, script: Path, *options: str) -> str:
        """Submit ``script``; return the job id."""
        proc = self.run(["sbatch", "--parsable", *options, str(script)])
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch failed ({proc.returncode}): {proc.stderr.strip()}\n{self.log_tail()}")
        return proc.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> Dict[str, str]:
        """``scontrol show job`` as a dict (JobState, ExitCode "status:signal", StdOut, ...)."""
        proc = self.run(["scontrol", "-o", "show", "job", job_id], timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"scontrol show job {job_id} failed: {proc.stderr.strip()}")
        return parse_record(proc.stdout.strip())

    def wait_job(self, job_id: str, deadline_s: float = 300) -> Dict[str, str]:
        """Poll until the job has finished; return its record (raises RuntimeError after the deadline)."""
        end = time.monotonic() + deadline_s
        while True:
            record = self.job(job_id)
            if record.get("JobState") in FINISHED_STATES:
                return record
            if time.monotonic() > end:
                raise RuntimeError(f"job {job_id} still {record.get('JobState')} after {deadline_s:.0f} s\n"
                                   f"{self.log_tail()}")
            time.sleep(0.3)

    def jobcomp(self, job_id: str) -> Optional[Dict[str, str]]:
        """The job's line in the jobcomp/filetxt log (written when it finished), or None."""
        try:
            lines = self.jobcomp_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            record = parse_record(line)
            if record.get("JobId") == job_id:
                return record
        return None

    def listpids(self, job_id: str) -> Set[int]:
        """Pids of the job's processes as Slurm's proctrack plugin sees them (``scontrol listpids``)."""
        proc = self.run(["scontrol", "listpids", job_id], timeout=30)
        pids = set()
        for line in proc.stdout.splitlines()[1:]:
            first = line.split()[0] if line.split() else ""
            if first.isdigit():
                pids.add(int(first))
        return pids

    def log_tail(self, lines: int = 25) -> str:
        parts = []
        for name in [f"{daemon}.{ext}" for ext in ("log", "out") for daemon in DAEMONS]:
            path = self.log_dir / name
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                if tail:
                    parts.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(parts) or "(no Slurm logs)"


def start_cluster(workdir: Path, **options) -> SlurmCluster:
    """Start a cluster with its files under ``workdir`` (see :class:`SlurmCluster` for the options)."""
    return SlurmCluster(Path(workdir), **options).start()


# -- /proc: whose process is whose ---------------------------------------------------------------------
def proc_stat(pid: int) -> Optional[tuple]:
    """(comm, state, ppid) of a live process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    return comm, fields[0], int(fields[1])


def cmdline(pid: int) -> List[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def processes_with(marker: str) -> Set[int]:
    """Live (not zombie) processes whose command line has an argument containing ``marker``."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            stat = proc_stat(int(entry))
            if stat is not None and stat[1] != "Z" and any(marker in arg for arg in cmdline(int(entry))):
                found.add(int(entry))
    return found


def ancestry(pid: int) -> List[tuple]:
    """[(pid, comm), parent, grandparent, ... up to pid 1] in the host's pid namespace."""
    chain = []
    while pid > 0:
        stat = proc_stat(pid)
        if stat is None:
            break
        chain.append((pid, stat[0]))
        pid = stat[2]
    return chain


def wait_for(check, deadline_s: float = 120.0, interval_s: float = 0.2):
    """Poll ``check()`` until it returns something true; return that, or None after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval_s)


def running(program: str, last_arg: str) -> List[int]:
    """Live processes of ``program`` (by base name) whose last argument is ``last_arg``, also when an
    engine runs them through the container's loader (``ld.so --argv0 sleep /usr/bin/sleep 5``)."""
    found = []
    for pid in processes_with(last_arg):
        argv = cmdline(pid)
        if argv and argv[-1] == last_arg and any(os.path.basename(arg) == program for arg in argv[:-1]):
            found.append(pid)
    return sorted(found)
