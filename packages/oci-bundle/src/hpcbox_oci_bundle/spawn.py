"""Start an engine's first process (the runc engine's runner, the preload engine's launcher) as
``subprocess.Popen(argv, env=env)`` does, without importing subprocess (which imports locale, re,
enum, threading and selectors: ~5 ms of every `hpcbox run`, more than the runner itself takes to
start a container).

Only for the common case: the three standard streams inherited and no other descriptor passed. As
Popen does by default, the child gets no descriptor but 0, 1 and 2 (close_fds), and SIGPIPE and
SIGXFSZ, which Python ignores, back at their default action (restore_signals); an exec that fails
raises its OSError in the caller. fork + execve rather than os.posix_spawn: glibc's posix_spawn
(2.36 at least) leaves the child with its two internal real-time signals (32, 33) ignored, and an
ignored signal stays ignored across exec, into the container.
"""

from __future__ import annotations

import os

try:
    import _signal as signal  # (the signal module would import enum)
except ImportError:  # pragma: no cover - other interpreters
    import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional

_RESTORED = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name))


def available() -> bool:
    return hasattr(os, "fork") and hasattr(signal, "pthread_sigmask")


def _inherited_fds() -> List[int]:
    """Descriptors above 2 that an exec would keep open (Python's own are close-on-exec already)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(3, 256)]
    fds = []
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    fds.append(fd)
            except OSError:  # not open (the directory listing's own, say)
                pass
    return fds


def _fork_exec(argv: List[str], env: Dict[str, str], close: List[int]) -> int:
    """Fork, and exec *argv* in the child; the child's exec error (errno through a close-on-exec pipe)
    is raised here. Signals stay blocked from before the fork until the child is about to exec, so no
    Python handler ever runs in the child."""
    report_r, report_w = os.pipe()  # both close-on-exec: a successful exec closes report_w
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, until exec
            code = 0
            try:
                for fd in close:
                    os.close(fd)
                for sig in _RESTORED:
                    signal.signal(sig, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                os.execve(argv[0], argv, env)
            except OSError as error:
                code = error.errno or 0
            finally:
                os.write(report_w, str(code).encode())
                os._exit(127)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(report_w)
    try:
        report = os.read(report_r, 32)
    finally:
        os.close(report_r)
    if report:
        os.waitpid(pid, 0)
        errno = int(report)
        raise OSError(errno, os.strerror(errno), argv[0])
    return pid


class Spawned:
    """The part of ``subprocess.Popen``'s interface that :class:`hpcbox_oci_bundle.Container` uses."""

    def __init__(self, argv: List[str], env: Dict[str, str]) -> None:
        self.args = argv
        self.returncode: Optional[int] = None
        self.pid = _fork_exec(argv, env, _inherited_fds())

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: Optional[float] = None) -> int:
        if timeout is not None:
            import time

            deadline = time.monotonic() + timeout
            while self.poll() is None:
                if time.monotonic() >= deadline:
                    import subprocess

                    raise subprocess.TimeoutExpired(self.args, timeout)
                time.sleep(0.005)
            return self.returncode  # type: ignore[return-value]
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)  # (retried by Python after a signal handler ran)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # never a signal to a reaped pid, which may belong to another process now
            os.kill(self.pid, sig)
