"""The shared run() rules: exit statuses, cleanup once, signals passed on and handlers restored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from hpcbox_oci_bundle import Container, exit_status, note_run_ended, run_to_completion, runs_ended


def test_exit_status_is_what_a_shell_reports():
    assert [exit_status(c) for c in (0, 1, 42, -9, -15)] == [0, 1, 42, 137, 143]


def test_container_reports_the_status_and_cleans_up_once():
    calls = []
    container = Container(subprocess.Popen(["sh", "-c", "exit 7"]), cleanup=lambda: calls.append(1))
    assert container.wait() == 7
    assert container.poll() == 7 and calls == [1]
    killed = Container(subprocess.Popen(["sleep", "30"]))
    assert killed.poll() is None
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == 128 + 9


def test_sigterm_to_the_caller_reaches_the_container_and_handlers_come_back(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    before_int = signal.getsignal(signal.SIGINT)  # SIG_IGN where the test run started in the background
    ready = tmp_path / "ready"
    script = f"trap 'exit 3' TERM; : > {ready}; while :; do sleep 0.05; done"

    def term_once_trapped():  # not after a fixed delay: a loaded machine may start sh later than that
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        # To the main thread, as a batch system's kill reaches single-threaded hpcbox: a signal to
        # the process may be taken by this thread, and the main one, blocked in waitpid, would
        # never run its handler (the test hung once so, the sh waiting for a TERM never sent).
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)

    def start():
        container = Container(subprocess.Popen(["sh", "-c", script]))
        threading.Thread(target=term_once_trapped, daemon=True).start()
        return container

    assert run_to_completion(start) == 3
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGINT) is before_int


def test_the_end_of_each_run_is_counted_before_the_handlers_come_back():
    """The CLI tells a batch signal after the container's end from one before its start by this
    count: it must have moved by the time the caller's own handler can run again."""
    seen = []

    def handler(sig, _frame):
        seen.append(runs_ended())

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        before = runs_ended()
        assert run_to_completion(lambda: Container(subprocess.Popen(["sh", "-c", "exit 4"]))) == 4
        os.kill(os.getpid(), signal.SIGUSR1)  # the caller's handler is back: the count has moved
        assert runs_ended() == before + 1 and seen == [before + 1]
        note_run_ended()  # an engine that waits in its own way counts its end itself
        assert runs_ended() == before + 2
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_a_signal_that_comes_while_the_container_starts_is_delivered_once_it_has():
    """A batch system's SIGTERM during start() (the engine's process being spawned) is not lost."""
    script = "trap 'exit 5' TERM; i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; exit 0"

    def start():
        os.kill(os.getpid(), signal.SIGTERM)  # handled (queued) before the process even exists
        return Container(subprocess.Popen(["sh", "-c", script]))

    # Without the queue the signal is dropped and the shell ends its loop with 0 (after ~30 s).
    # The shell may get the signal before its trap is set (143) or after (5).
    assert run_to_completion(start) in (5, 128 + signal.SIGTERM)


def test_a_signal_the_caller_ignores_stays_ignored_and_is_not_passed_on():
    """`nohup hpcbox run ...`: SIGHUP was ignored when hpcbox started; a hangup must not end the
    program, which inherits the ignored disposition as a program started by nohup does."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        seen = []
        probe = ("import signal; "
                 "raise SystemExit(7 if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else 1)")

        def start():
            seen.append(signal.getsignal(signal.SIGHUP))
            os.kill(os.getpid(), signal.SIGHUP)  # the hangup: queued and passed on, were it handled
            return Container(subprocess.Popen([sys.executable, "-c", probe]))

        assert run_to_completion(start) == 7
        assert seen == [signal.SIG_IGN]
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_outside_the_main_thread_nothing_is_installed():
    result = []

    def start():
        return Container(subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"]))

    thread = threading.Thread(target=lambda: result.append(run_to_completion(start)))
    thread.start()
    thread.join()
    assert result == [4]
