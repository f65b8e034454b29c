"""Error mapping to one line + exit code; progress and table output."""

from __future__ import annotations

import errno
import io

import pytest

from hpcbox import errors, output
from hpcbox.errors import UsageError
from hpcbox.progress import BarProgress, LineProgress, for_stream
from hpcbox.store import StoreCorruptError, UnknownImageError
from hpcbox.store.pull import PullProgress


@pytest.mark.parametrize("exc, code, words", [
    (OSError(errno.ENOSPC, "No space left on device", "/s/tmp/x"), errors.EXIT_STORAGE,
     ["no space left on device writing /s/tmp/x", "--home"]),
    (OSError(errno.EFBIG, "File too large"), errors.EXIT_STORAGE, ["file too large", "ulimit -f"]),
    (PermissionError(errno.EACCES, "Permission denied", "/ro"), errors.EXIT_STORAGE,
     ["permission denied on /ro"]),
    (UnknownImageError("no image 'x' in the store; run 'hpcbox images'"), errors.EXIT_NOT_FOUND,
     ["no image"]),
    (StoreCorruptError("blob gone; pull again"), errors.EXIT_INTEGRITY, ["blob gone"]),
    (errors.UsageError("bad thing"), errors.EXIT_USAGE, ["bad thing; see 'hpcbox COMMAND -h'"]),
    (KeyboardInterrupt(), errors.EXIT_INTERRUPTED, ["interrupted; run the same command again"]),
    (ValueError("odd\nvalue"), errors.EXIT_FAILURE, ["unexpected ValueError: odd value", "HPCBOX_DEBUG=1"]),
])
def test_describe_local_errors(exc, code, words):
    message, got = errors.describe(exc)
    assert got == code
    assert "\n" not in message and "; " in message
    for word in words:
        assert word in message


REGISTRY_CASES = [
    ("InvalidReferenceError", errors.EXIT_USAGE),
    ("AuthenticationError", errors.EXIT_AUTH),
    ("AuthorizationError", errors.EXIT_AUTH),
    ("NotFoundError", errors.EXIT_NOT_FOUND),
    ("PlatformNotFoundError", errors.EXIT_NOT_FOUND),
    ("DigestMismatchError", errors.EXIT_INTEGRITY),
    ("RegistryConnectionError", errors.EXIT_NETWORK),
    ("TLSVerificationError", errors.EXIT_NETWORK),
    ("InsecureRegistryError", errors.EXIT_NETWORK),
    ("RateLimitedError", errors.EXIT_NETWORK),
    ("RegistryServerError", errors.EXIT_NETWORK),
    ("UnsupportedMediaTypeError", errors.EXIT_FAILURE),
    ("RegistryError", errors.EXIT_FAILURE),
]


@pytest.mark.parametrize("name, code", REGISTRY_CASES)
def test_describe_registry_errors(name, code):
    import hpcbox_registry

    exc = getattr(hpcbox_registry, name)("the problem\nspread over lines")
    message, got = errors.describe(exc)
    assert got == code
    assert message.startswith("the problem spread over lines; ") and "\n" not in message


def test_no_progress_on_a_non_terminal_unless_asked(monkeypatch):
    """A captured stderr (a workflow engine's, a batch log) gets no progress by default: it is the
    program's; lines come with --progress lines or HPCBOX_PROGRESS=lines."""
    monkeypatch.delenv("HPCBOX_PROGRESS", raising=False)
    stream = io.StringIO()
    progress = for_stream(stream)
    assert not isinstance(progress, (LineProgress, BarProgress))
    progress.layer_start("sha256:" + "a" * 64, 10, 0)
    progress.layer_done("sha256:" + "a" * 64, "downloaded")
    assert stream.getvalue() == ""
    monkeypatch.setenv("HPCBOX_PROGRESS", "lines")
    assert isinstance(for_stream(stream), LineProgress)
    assert isinstance(for_stream(stream, mode="none"), PullProgress)
    assert not isinstance(for_stream(stream, quiet=True), LineProgress)
    monkeypatch.setenv("HPCBOX_PROGRESS", "chatty")
    with pytest.raises(UsageError, match="unknown progress mode 'chatty'"):
        for_stream(stream)


def test_line_progress_prints_one_line_per_layer():
    stream = io.StringIO()
    progress = for_stream(stream, mode="lines")
    assert isinstance(progress, LineProgress)
    progress.layer_start("sha256:" + "a" * 64, 2_500_000, 0)
    progress.layer_advance("sha256:" + "a" * 64, 2_500_000)
    progress.layer_done("sha256:" + "a" * 64, "downloaded")
    progress.layer_done("sha256:" + "b" * 64, "exists")
    assert stream.getvalue() == f"{'a' * 12}: downloaded 2.5 MB\n{'b' * 12}: already exists\n"


def test_bar_progress_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    progress = for_stream(stream)
    assert isinstance(progress, BarProgress)
    progress.layer_start("sha256:" + "a" * 64, 1000, 0)
    progress.layer_start("sha256:" + "c" * 64, -1, 0)
    progress.interval = 0
    progress.layer_advance("sha256:" + "a" * 64, 500)
    text = stream.getvalue()
    assert "[" + "#" * 15 + " " * 15 + "]" in text and "500 B/1.0 kB" in text
    assert "\x1b[2F" in text  # redraws the two lines in place
    progress.layer_done("sha256:" + "a" * 64, "downloaded")
    assert stream.getvalue().endswith(f"\x1b[2K{'c' * 12}: 0 B\n")
    assert isinstance(for_stream(stream, quiet=True), type(for_stream(io.StringIO(), quiet=True)))


def test_human_size_and_table():
    assert [output.human_size(n) for n in (0, 999, 1000, 1_234_567, 5e12)] == \
        ["0 B", "999 B", "1.0 kB", "1.2 MB", "5.0 TB"]
    stream = io.StringIO()
    output.table(["A", "LONGER"], [["xyz", "1"], ["p", "22"]], stream)
    assert stream.getvalue() == "A     LONGER\nxyz   1\np     22\n"
