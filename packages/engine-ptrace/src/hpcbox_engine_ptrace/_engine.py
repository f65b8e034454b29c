"""The engine object: runs an OCI bundle under the tracer executable ``hpcbox-ptrace``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple, Union

import hpcbox_oci_bundle
from hpcbox_oci_bundle import (
    Bundle,
    Container,
    contract,
    guest_bindings,
    helper_path,
    helper_problem,
    parse_bundle,
    place_bindings,
    run_to_completion,
)
from hpcbox_oci_bundle.backstop import landlock_wanted

from hpcbox_engine_ptrace.errors import BundleError, EngineError, UnavailableError

TRACER_NAME = "hpcbox-ptrace"
EXIT_ENGINE = contract.EXIT_ENGINE
SECCOMP_ANNOTATION = contract.ANNOTATION_PTRACE_SECCOMP
NET_ANNOTATION = contract.ANNOTATION_NET
STATS_ENV = "HPCBOX_PTRACE_STATS"  # set to 1 on the host: stop counts per syscall on stderr
TRACE_DIRFD_ENV = "HPCBOX_PTRACE_TRACE_DIRFD"  # 1 on the host: --trace-dirfd (no dirfd fast path)
# 1 on the host: --exact-owners (under root emulation, stat by descriptor stops from the start)
EXACT_OWNERS_ENV = "HPCBOX_PTRACE_EXACT_OWNERS"
# Signals a batch system or a user sends to the engine's caller: passed on (by the tracer) to the
# program. SIGINT/SIGQUIT/SIGWINCH from a terminal reach the program directly (same process group).
_ARCHES = ("x86_64", "aarch64")

BundleLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]


def tracer_path() -> Path:
    """The compiled tracer shipped inside the package (or in $HPCBOX_LIBEXEC_DIR)."""
    return helper_path(Path(__file__).resolve().parent, TRACER_NAME)


def _parse(bundle: BundleLike, bundle_dir: Optional[str]) -> Bundle:
    try:
        return parse_bundle(bundle, bundle_dir)
    except hpcbox_oci_bundle.BundleError as error:
        raise BundleError(str(error)) from None


OWNERS_FILE = "ownership"  # the container's ownership record, shared with the preload engine


def ownership_record(spec: Bundle) -> Optional[str]:
    """Where the container's ownership record lives (what chown set under root emulation; the tracer
    creates it): in the bundle directory when the rootfs lies in it, else none."""
    bundle = os.path.realpath(spec.bundle_dir)
    if os.path.dirname(spec.rootfs) != bundle or not os.access(bundle, os.W_OK):
        return None
    return os.path.join(bundle, OWNERS_FILE)


def tracer_argv(spec: Bundle, tracer: Optional[str] = None) -> List[str]:
    """The tracer's command line for a parsed bundle (no JSON reaches the C side)."""
    seccomp = spec.annotations.get(SECCOMP_ANNOTATION, "on")
    if seccomp not in ("on", "off"):
        raise BundleError(f"annotation {SECCOMP_ANNOTATION}={seccomp!r} is neither on nor off: "
                          "set it to on (seccomp fast path, P1) or off (trace every syscall, P2)")
    if spec.annotations.get(NET_ANNOTATION, "host") == "none":
        raise BundleError("--net=none needs a network namespace, which the ptrace engine does not use: "
                          "use --engine runc, or run with the host's network")
    try:
        bindings = guest_bindings(spec)
    except hpcbox_oci_bundle.BundleError as error:
        raise BundleError(str(error)) from None
    argv = [str(tracer or tracer_path()), "--rootfs", spec.rootfs, "--cwd", spec.cwd,
            "--uid", str(spec.uid), "--gid", str(spec.gid)]
    emulated = (spec.uid, spec.gid) != (os.getuid(), os.getgid())
    owners = ownership_record(spec) if emulated else None
    if owners:
        argv += ["--owners", owners]
    if spec.hostname:
        argv += ["--hostname", spec.hostname]
    if spec.readonly:
        argv.append("--readonly")
    if seccomp == "off":
        argv.append("--no-seccomp")
    if not landlock_wanted(os.environ)[0]:
        argv.append("--no-landlock")
    if os.environ.get(TRACE_DIRFD_ENV, "") not in ("", "0"):
        argv.append("--trace-dirfd")
    if emulated and os.environ.get(EXACT_OWNERS_ENV, "") not in ("", "0"):
        argv.append("--exact-owners")
    if os.environ.get(STATS_ENV, "") not in ("", "0"):
        argv.append("--stats")
    for binding in bindings:
        if not os.path.exists(binding.host):
            raise BundleError(f"the host path {binding.host} bound at {binding.guest} does not exist: "
                              "create it or drop that volume")
    for binding in place_bindings(spec.rootfs, bindings):  # as mounts land: links followed, mount points made
        argv += ["--bind-ro" if binding.readonly else "--bind", binding.guest, binding.host]
    return [*argv, "--", *spec.args]




class PtraceEngine:
    """Runs containers under a seccomp+ptrace tracer that translates paths: no privileges and no
    user namespaces needed, only ptrace."""

    name = "ptrace"
    #: no mount or network namespace: binds only (tmpfs mounts and --net=none are refused)
    capabilities = frozenset({contract.CAP_GPUS, contract.CAP_STATIC_PROGRAMS})

    def landlock(self) -> Tuple[bool, str]:
        """Whether a run from this environment restricts the container's writes with Landlock
        (where the kernel has it): (True, "") or (False, why not)."""
        return landlock_wanted(os.environ)

    def __init__(self, tracer: Optional[str] = None):
        self._tracer = tracer

    @property
    def tracer(self) -> str:
        return str(self._tracer or tracer_path())

    def available(self, proc_root: str = "/proc", **hints: Any) -> Tuple[bool, str]:
        """(True, why) when this host lets the tracer work, else (False, what to do). *proc_root*
        is where /proc is (tests); other hints are ignored."""
        machine = os.uname().machine
        if machine not in _ARCHES:
            return False, f"the tracer knows the syscalls of {' and '.join(_ARCHES)} only, not {machine}"
        problem = helper_problem(self.tracer)
        if problem:
            return False, (f"the tracer cannot run: {problem}; reinstall hpcbox-engine-ptrace (the wheel "
                           "for this machine)")
        try:
            with open(os.path.join(proc_root, "sys/kernel/yama/ptrace_scope")) as f:
                scope = f.read().strip()
        except OSError:
            scope = ""
        if scope == "3":
            return False, ("Yama forbids ptrace on this host (kernel.yama.ptrace_scope = 3, fixed until "
                           "reboot); ask the administrators for 0-2, or use --engine runc or preload")
        try:
            probe = subprocess.run([self.tracer, "--probe"], capture_output=True, text=True, timeout=30,
                                   check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"the tracer does not start ({error}); reinstall hpcbox-engine-ptrace"
        if probe.returncode != 0:
            line = (probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"])[-1]
            return False, (f"{line.replace('hpcbox-ptrace: ', '')}; ptrace may be forbidden by a seccomp "
                           "policy or another tracer (a container runtime, a debugger): use --engine runc "
                           "or preload")
        if probe.stdout.strip() == "no-seccomp":
            return True, ("ptrace works here, but seccomp filters do not: every system call is traced "
                          "(correct, several times slower; --engine preload or runc are faster where they "
                          "work)")
        return True, "ptrace with a seccomp filter works here"

    def parse(self, bundle: BundleLike, bundle_dir: Optional[str] = None) -> Bundle:
        return _parse(bundle, bundle_dir)

    def argv(self, bundle: BundleLike, bundle_dir: Optional[str] = None) -> List[str]:
        return tracer_argv(_parse(bundle, bundle_dir), self.tracer)

    def start(self, bundle: BundleLike, *, bundle_dir: Optional[str] = None, stdin: Any = None,
              stdout: Any = None, stderr: Any = None) -> Container:
        """Start the container and return at once; raise EngineError when it cannot start."""
        spec = _parse(bundle, bundle_dir)
        if not os.access(self.tracer, os.X_OK):
            raise UnavailableError(f"the tracer {self.tracer} is missing or not executable; "
                                   "reinstall hpcbox-engine-ptrace")
        argv = tracer_argv(spec, self.tracer)
        try:
            process = subprocess.Popen(argv, env=spec.env, stdin=stdin, stdout=stdout, stderr=stderr)
        except OSError as error:
            raise EngineError(f"cannot start the tracer {self.tracer}: {error}; reinstall "
                              "hpcbox-engine-ptrace") from None
        return Container(process)

    def run(self, bundle: BundleLike, *, bundle_dir: Optional[str] = None, stdin: Any = None,
            stdout: Any = None, stderr: Any = None, forward_signals: bool = True) -> int:
        """Run the bundle to completion and return its exit status: the program's, 128+n when it
        died of signal n, 125 when the tracer failed (one line on stderr), 126/127 when the program
        is not executable/not found. Problems found before anything starts (bad bundle, missing
        tracer) raise EngineError subclasses instead."""
        return run_to_completion(
            lambda: self.start(bundle, bundle_dir=bundle_dir, stdin=stdin, stdout=stdout, stderr=stderr),
            forward_signals)

