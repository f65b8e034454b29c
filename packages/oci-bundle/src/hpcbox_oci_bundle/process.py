"""The engines' run() rules, shared: exit status as a shell reports it, and the caller's signals.

Every engine starts one host process for the container (a runner, a tracer, a launcher) and waits
for it. What the caller sees must be the same whichever engine ran: the program's exit status, or
128+n when it died of signal n; SIGTERM/SIGHUP/SIGUSR1/SIGUSR2 sent to hpcbox (by a batch system,
say) passed on to the container; terminal signals (^C, ^\\, window size) left to reach the container
directly, since it shares the terminal's process group, while hpcbox keeps waiting. A signal that
was ignored when hpcbox started (SIGHUP under ``nohup``, SIGINT in a background job) stays ignored,
and the engine's process inherits that, as a program started that way natively would.
"""

from __future__ import annotations

try:  # the signal functions without the signal module's enums (enum costs ~1 ms per `hpcbox run`)
    import _signal as signal
except ImportError:  # pragma: no cover - other interpreters
    import signal

TYPE_CHECKING = False  # typing is for type checkers only (it costs ~2 ms to import)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH)


def exit_status(returncode: int) -> int:
    """A Popen return code as a shell reports it: 128+n for death by signal n."""
    return 128 - returncode if returncode < 0 else returncode


class Container:
    """A started container: ``pid`` is the engine's host process, ``wait()`` the exit status.

    *cleanup*, when given, runs once when the process is found to have ended."""

    def __init__(self, process: Any, cleanup: Optional[Callable[[], None]] = None):
        self.process = process  # a subprocess.Popen
        self.pid = process.pid
        self._cleanup = cleanup

    def send_signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def poll(self) -> Optional[int]:
        code = self.process.poll()
        return None if code is None else self._finish(code)

    def wait(self, timeout: Optional[float] = None) -> int:
        return self._finish(self.process.wait(timeout))

    def _finish(self, code: int) -> int:
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            cleanup()
        return exit_status(code)


_ended = [0]  # containers whose run ended in this process


def note_run_ended() -> None:
    """Count the end of a container's run, before the caller's signal handlers come back. A caller
    that holds the batch signals around run() (the CLI) tells by it that a signal reaching its own
    handler came after the container (Slurm signals every process of a job step, the container's
    first and hpcbox last), not before anything started. run_to_completion() calls it; an engine
    that waits in its own way calls it too."""
    _ended[0] += 1


def runs_ended() -> int:
    """How many containers' runs have ended in this process (note_run_ended)."""
    return _ended[0]


def _ignore(_sig: int, _frame: Any) -> None:
    """Terminal signals reach the container directly; the caller just keeps waiting."""


def run_to_completion(start: Callable[[], Container], forward_signals: bool = True) -> int:
    """``start()`` the container and wait for its exit status, passing the caller's signals on
    (only from the main thread, where Python lets handlers be set); handlers are restored after."""
    previous: Dict[int, Any] = {}
    started: List[Container] = []
    early: List[int] = []  # signals that came while start() ran: delivered as soon as it returns

    def forward(sig: int, _frame: Any) -> None:
        if not started:
            early.append(sig)
            return
        try:
            started[0].send_signal(sig)
        except OSError:
            pass  # it has just ended

    if forward_signals:
        for sig in FORWARDED_SIGNALS + TERMINAL_SIGNALS:
            if signal.getsignal(sig) == signal.SIG_IGN:
                continue  # ignored when hpcbox started (nohup, a background job): so for the program
            try:
                previous[sig] = signal.signal(sig, forward if sig in FORWARDED_SIGNALS else _ignore)
            except ValueError:  # not the main thread: Python sets no handlers there
                break
    try:
        container = start()
        started.append(container)
        while early:
            forward(early.pop(0), None)
        status = container.wait()
        note_run_ended()  # (a signal from here on, until the handlers are back, is forward()'s: a no-op)
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
