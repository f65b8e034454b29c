"""A delegated ``runc run`` started once more when its first try failed before the program existed.

runc 1.1 copies its own binary in the C step (nsexec) that runs before the container's init, and
under load that step sometimes dies ("could not ensure we are a cloned binary ... read init-p:
connection reset by peer"). Nothing of the container ran then, so starting runc again is safe,
provided that nothing the first try consumed is lost: stdin must be replayable (a regular file,
rewound to where it was; a character device such as /dev/null or a terminal) and the caller must
not be holding pipes to the first process. runc tells which step failed only in its log
(``--log FILE --log-format json``): its nsexec messages go there, its final error line still goes
to stderr as before. When runc fails for good, its nsexec reasons are printed after that line,
since the log is removed with the bundle.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from typing import IO, Any, Callable, List, Optional, Union

# What runc 1.1's nsexec logs when its self-copy fails: the only failure retried (others are
# deterministic, e.g. a namespace path that is not a namespace).
TRANSIENT_NSEXEC = "cloned binary"
Stdio = Union[None, int, IO[Any]]


def log_options(log_path: str) -> List[str]:
    """runc's global options that send its own messages, as JSON lines, to *log_path*."""
    return ["--log", log_path, "--log-format", "json"]


def nsexec_failures(log_path: str) -> List[str]:
    """The fatal messages of runc's nsexec step in its JSON log (empty when none or no log)."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("msg") if isinstance(entry, dict) else None
        if entry.get("level") == "fatal" and isinstance(message, str) and message.startswith("nsexec"):
            found.append(message)
    return found


def _fd_of(stdio: Stdio, default: int) -> Optional[int]:
    if stdio is None:
        return default
    if isinstance(stdio, int):
        return stdio if stdio >= 0 else None
    try:
        return stdio.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def stdin_rewind(stdin: Stdio) -> Optional[int]:
    """How to give a second try the same stdin: the offset to rewind a regular file to, -1 when
    nothing needs rewinding (DEVNULL, a character device), None when it cannot be replayed (a pipe,
    a socket, or a pipe the caller writes to)."""
    if stdin == subprocess.DEVNULL:
        return -1
    fd = _fd_of(stdin, 0)
    if fd is None:
        return None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return None
    return -1 if stat.S_ISCHR(mode) else None


class RetriedRunc:
    """The part of ``subprocess.Popen``'s interface that :class:`hpcbox_oci_bundle.Container` and
    callers use, over one ``runc run`` that is started at most twice (see the module's text).

    *argv* ends with the container's name; a second try gets *rename()* of it, since runc may keep
    the failed one's state."""

    def __init__(self, argv: List[str], log_path: str, *, stdin: Stdio, stdout: Stdio, stderr: Stdio,
                 rename: Optional[Callable[[str], str]] = None):
        self.args = argv
        self._log = log_path
        self._stdio = (stdin, stdout, stderr)
        self._rename = rename
        pipes = subprocess.PIPE in (stdin, stdout, stderr)
        self._rewind = None if pipes else stdin_rewind(stdin)
        self._signalled = False
        self._tries = 0
        self._final: Optional[int] = None  # the status once no further try will come
        self._process = self._start(argv)

    def _start(self, argv: List[str]) -> subprocess.Popen[bytes]:
        self._tries += 1
        stdin, stdout, stderr = self._stdio
        return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> Optional[int]:
        return self._process.returncode

    @property
    def stdin(self) -> Optional[IO[bytes]]:
        return self._process.stdin

    @property
    def stdout(self) -> Optional[IO[bytes]]:
        return self._process.stdout

    @property
    def stderr(self) -> Optional[IO[bytes]]:
        return self._process.stderr

    def send_signal(self, sig: int) -> None:
        self._signalled = True  # a signal meant for this run must not be lost to a restart
        self._process.send_signal(sig)

    def kill(self) -> None:
        self._signalled = True
        self._process.kill()

    def terminate(self) -> None:
        self._signalled = True
        self._process.terminate()

    def poll(self) -> Optional[int]:
        if self._final is not None:
            return self._final
        code = self._process.poll()
        if code is None or self._again(code):
            return None
        self._final = code
        return code

    def wait(self, timeout: Optional[float] = None) -> int:
        while self._final is None:
            code = self._process.wait(timeout)
            if not self._again(code):
                self._final = code
        return self._final

    def _again(self, code: int) -> bool:
        """Start runc once more when this try failed in nsexec's self-copy and that is safe."""
        if code == 0:
            return False
        reasons = nsexec_failures(self._log)
        transient = any(TRANSIENT_NSEXEC in reason for reason in reasons)
        if not (transient and self._tries == 1 and not self._signalled and self._rewind is not None):
            self._tell(reasons, again=False)
            return False
        if self._rewind >= 0:
            stdin_fd = _fd_of(self._stdio[0], 0)
            assert stdin_fd is not None  # a rewind offset is only recorded for a real descriptor
            os.lseek(stdin_fd, self._rewind, os.SEEK_SET)
        self._tell(reasons, again=True)
        os.truncate(self._log, 0)
        argv = list(self.args)
        if self._rename is not None:
            argv[-1] = self._rename(argv[-1])
        self._process = self._start(argv)
        return True

    def _tell(self, reasons: List[str], again: bool) -> None:
        """runc's nsexec reasons (only in its log) on the run's stderr, and what happens next."""
        if not reasons:
            return
        lines = [f"runc: {reason}" for reason in reasons]
        if again:
            lines.append("hpcbox: runc failed before the container started; starting it once more")
        text = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        fd = _fd_of(self._stdio[2], 2)
        if fd is None:
            if self._stdio[2] == subprocess.DEVNULL:
                return
            fd = sys.stderr.fileno()
        try:
            os.write(fd, text)
        except OSError:
            pass  # stderr closed: the exit status still tells
