"""Free loopback ports, and waiting until a local server answers."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Callable, Iterator, List, Optional

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound, never listening,
    so no other server can take it meanwhile (a port from free_port() may be taken by then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


def free_ports(count: int) -> List[int]:
    """``count`` distinct free ports (each held until all are picked, so none comes twice)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(sock.getsockname()[1])
        return ports


def wait_for_http(
    url: str,
    *,
    deadline_s: float = 30.0,
    ssl_context: Optional[ssl.SSLContext] = None,
    alive: Optional[Callable[[], bool]] = None,
) -> int:
    """Poll ``url`` until it answers with any HTTP status; return that status.

    ``alive`` is asked between polls (e.g. "is the server process still running?") so that a server
    which died at start fails at once instead of after the whole deadline. Raises RuntimeError.
    """
    end = time.monotonic() + deadline_s
    last_error: object = None
    while time.monotonic() < end:
        if alive is not None and not alive():
            raise RuntimeError(f"server for {url} exited before it answered")
        try:
            with urllib.request.urlopen(url, timeout=2, context=ssl_context) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except (OSError, urllib.error.URLError) as error:
            last_error = error
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {deadline_s:.0f} s (last error: {last_error})")
