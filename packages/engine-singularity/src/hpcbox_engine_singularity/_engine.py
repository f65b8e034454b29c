"""The engine object: probes the site's apptainer/singularity and runs a bundle through it."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any, Callable, Dict, Mapping, Optional, Set, Tuple

import hpcbox_oci_bundle
from hpcbox_oci_bundle import BundleLike, contract

from hpcbox_engine_singularity import _probe
from hpcbox_engine_singularity._bundle import Bundle, parse_bundle
from hpcbox_engine_singularity._command import Command, build_command, prepare_rootfs
from hpcbox_engine_singularity._probe import Installation
from hpcbox_engine_singularity.errors import EngineError, UnavailableError

# Sent by a batch system, a user or the terminal: passed on to apptainer, which passes them to the
# container. A signal the terminal sent to the whole foreground process group (si_code SI_KERNEL)
# reached apptainer too, so it is not sent a second time.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
SI_KERNEL = 0x80
SUBUID_PATH = "/etc/subuid"
# Apptainer 1.1 and later fake root without /etc/subuid (root-mapped namespace + fakeroot command).
_FAKEROOT_WITHOUT_SUBUID = {"apptainer": (1, 1, 0)}
_STRIPPED_PREFIXES = ("APPTAINERENV_", "SINGULARITYENV_")


class Container(hpcbox_oci_bundle.Container):
    """A started apptainer process: `pid`, `send_signal()`, `poll()`, `wait()` (128+n for signal n);
    its work directory is removed once it has ended."""

    def __init__(self, process: subprocess.Popen[bytes], command: Command, cleanup: Optional[str] = None):
        super().__init__(process, cleanup=(lambda: _remove(cleanup)) if cleanup else None)
        self.command = command


def _remove(path: Optional[str]) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


def _write_note(stream: Any, text: str) -> None:
    line = f"hpcbox: {text}\n".encode("utf-8", "replace")
    inherited = stream is None or stream in (subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT)
    target: Any = sys.stderr if inherited else stream
    try:
        if isinstance(target, int):
            os.write(target, line)
        elif hasattr(target, "buffer"):
            target.flush()
            target.buffer.write(line)
            target.buffer.flush()
        else:
            try:
                target.write(line)
            except TypeError:
                target.write(line.decode())
            target.flush()
    except (OSError, ValueError):
        pass


class SingularityEngine:
    """Runs OCI bundles as writable sandboxes through the host's apptainer or singularity."""

    name = "singularity"
    #: apptainer's own mount namespace; its tmpfs handling (scratch directories) is its own, so the
    #: caller's scratch tmpfs for GPUs is not asked of it
    capabilities = frozenset({contract.CAP_PRIVATE_NETWORK, contract.CAP_GPUS,
                              contract.CAP_STATIC_PROGRAMS})

    def __init__(self, binary: Optional[str] = None, *, subuid_path: str = SUBUID_PATH,
                 caller_uid: Optional[int] = None, environ: Optional[Mapping[str, str]] = None):
        self._binary = binary
        self._subuid_path = subuid_path
        self._caller_uid = caller_uid
        self._environ = environ
        self._cache: Dict[Tuple[str, int, int], Installation] = {}
        self._said: Set[str] = set()

    # -- discovery ----------------------------------------------------------------------------------
    @property
    def caller_uid(self) -> int:
        return os.getuid() if self._caller_uid is None else self._caller_uid

    def installation(self) -> Installation:
        """The probed binary (cached while the file is unchanged); UnavailableError explains why not."""
        environ = os.environ if self._environ is None else self._environ
        path = self._binary or _probe.find_binary(environ)
        try:
            info = os.stat(path)
        except OSError as error:
            raise UnavailableError(f"cannot use {path} ({error.strerror}): {_probe.INSTALL_HINT}") from None
        key = (path, info.st_mtime_ns, info.st_size)
        if key not in self._cache:
            self._cache[key] = _probe.probe(path)
        return self._cache[key]

    def available(self, **hints: Any) -> Tuple[bool, str]:
        """(True, which binary and options) when bundles can run here, else (False, what to do).
        No hint changes the answer."""
        try:
            inst = self.installation()
        except UnavailableError as error:
            return False, str(error)
        ok, reason = _probe.check(inst)
        if ok and inst.has("fakeroot"):
            allowed, why = self.fakeroot_allowed(inst)
            reason += "; fakeroot: " + ("yes" if allowed else f"no ({why})")
        return ok, reason

    def fakeroot_allowed(self, inst: Installation) -> Tuple[bool, str]:
        """Whether `--fakeroot` should work for the caller here, and why not otherwise."""
        if not inst.has("fakeroot"):
            return False, f"{inst.command_name} {inst.version_string} has no --fakeroot option"
        least = _FAKEROOT_WITHOUT_SUBUID.get(inst.flavor)
        if least is not None and inst.version >= least:
            return True, ""
        uid = self.caller_uid
        names = {str(uid)}
        try:
            names.add(pwd.getpwuid(uid).pw_name)
        except KeyError:
            pass
        try:
            with open(self._subuid_path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    fields = line.strip().split(":")
                    if len(fields) == 3 and fields[0] in names and fields[2].isdigit() and int(fields[2]) > 0:
                        return True, ""
        except OSError:
            pass
        return False, (f"uid {uid} has no range in {self._subuid_path}, which "
                       f"{inst.command_name} {inst.version_string} needs to fake root")

    # -- running --------------------------------------------------------------------------------------
    def parse(self, bundle: BundleLike, bundle_dir: Optional[str] = None) -> Bundle:
        return parse_bundle(bundle, bundle_dir)

    def command(self, bundle: BundleLike, *, bundle_dir: Optional[str] = None) -> Command:
        """The exec command for a bundle on this host's binary (nothing is run or changed)."""
        return self._command(parse_bundle(bundle, bundle_dir))

    def _command(self, spec: Bundle, workdir: Optional[str] = None) -> Command:
        inst = self.installation()
        ok, reason = _probe.check(inst)
        if not ok:
            raise UnavailableError(reason)
        allowed, why = self.fakeroot_allowed(inst)
        return build_command(spec, inst, caller_uid=self.caller_uid, fakeroot_allowed=allowed,
                             fakeroot_reason=why, workdir=workdir)

    def child_environment(self, command: Command) -> Dict[str, str]:
        """The binary's environment: the caller's, without stray *ENV_ variables, plus the container's."""
        base = os.environ if self._environ is None else self._environ
        env = {k: v for k, v in base.items() if not k.startswith(_STRIPPED_PREFIXES)}
        env.update(command.env)
        return env

    def start(self, bundle: BundleLike, *, bundle_dir: Optional[str] = None, stdin: Any = None,
              stdout: Any = None, stderr: Any = None,
              _preexec: Optional[Callable[[], None]] = None) -> Container:
        """Start the container and return at once; raise EngineError when it cannot start."""
        spec = parse_bundle(bundle, bundle_dir)
        # tmpfs mounts become apptainer scratch dirs, kept in a private workdir removed afterwards
        workdir = tempfile.mkdtemp(prefix="hpcbox-apptainer-") if spec.scratch else None
        try:
            command = self._command(spec, workdir)
            prepare_rootfs(spec)
            for note in command.notes:
                if note not in self._said:
                    self._said.add(note)
                    _write_note(stderr, note)
            process = subprocess.Popen(command.argv, env=self.child_environment(command), stdin=stdin,
                                       stdout=stdout, stderr=stderr,
                                       # only restores the signal mask; no locks are taken there
                                       preexec_fn=_preexec)  # noqa: PLW1509
        except OSError as error:
            _remove(workdir)
            raise EngineError(f"cannot start {self._binary or 'apptainer'} ({error.strerror}): check the "
                              f"binary, or set {_probe.ENV_OVERRIDE} to a working one") from None
        except BaseException:
            _remove(workdir)
            raise
        return Container(process, command, cleanup=workdir)

    def run(self, bundle: BundleLike, *, bundle_dir: Optional[str] = None, stdin: Any = None,
            stdout: Any = None, stderr: Any = None, forward_signals: bool = True) -> int:
        """Run the bundle to completion and return its exit status (128+n when it died of signal n;
        apptainer's own failures are its status, 255). Problems found before anything starts raise
        EngineError subclasses. Streams are inherited unless given (as for subprocess.Popen)."""
        if not forward_signals or threading.current_thread() is not threading.main_thread():
            return self.start(bundle, bundle_dir=bundle_dir, stdin=stdin, stdout=stdout, stderr=stderr).wait()
        self.installation()  # probe (cached) before blocking signals, so its children get the usual mask
        watched = {*FORWARDED, signal.SIGCHLD}
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)

        def unblock() -> None:  # in the child, before exec: it must see signals again
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

        try:
            container = self.start(bundle, bundle_dir=bundle_dir, stdin=stdin, stdout=stdout,
                                   stderr=stderr, _preexec=unblock)
            status = _wait_forwarding(container, watched)
            _note_run_ended()  # before the unblock: a signal pending now came after the container's end
            return status
        finally:
            _drain_sigchld()
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _note_run_ended() -> None:
    """hpcbox_oci_bundle's count of ended runs (for the CLI's hold of batch signals), where it has one."""
    note = getattr(hpcbox_oci_bundle, "note_run_ended", None)
    if note is not None:
        note()


def _wait_forwarding(container: Container, watched: Set[signal.Signals]) -> int:
    while True:
        code = container.poll()
        if code is not None:
            return code
        info = signal.sigtimedwait(watched, 5.0)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        if info.si_code == SI_KERNEL:
            continue  # the terminal sent it to the whole process group, apptainer included
        try:
            container.send_signal(info.si_signo)
        except OSError:
            pass


def _drain_sigchld() -> None:
    """Consume the SIGCHLD that arrived while blocked, so it does not reach the caller's handler late."""
    while signal.sigtimedwait({signal.SIGCHLD}, 0) is not None:
        pass
