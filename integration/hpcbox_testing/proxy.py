"""Loopback TCP proxies that break a registry's replies: ``DropProxy`` cuts connections after N bytes of
response data (for resume tests); ``FaultProxy`` cuts, corrupts, stalls or refuses the replies to
chosen requests (for the fault-injection tests, see ``Fault``).

``DropProxy(target_host, drop_after_bytes, drops=1)`` listens on 127.0.0.1; every accepted connection is
forwarded to ``target_host`` ("HOST:PORT"). The first ``drops`` connections that carry more than
``drop_after_bytes`` bytes from the target back to the client are closed right after that many bytes
(FIN: the client reads exactly that many, then a premature end of stream); later connections pass
untouched. ``drops_done`` counts the cuts made and ``requests`` keeps the bytes each connection sent
towards the target (to check e.g. a ``Range`` header).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import List, Optional, Tuple

from .ports import LOOPBACK


def _split_host(host: str) -> Tuple[str, int]:
    name, _, port = host.rpartition(":")
    return name.strip("[]"), int(port)


class DropProxy:
    def __init__(self, target_host: str, drop_after_bytes: int, drops: int = 1):
        self.target = _split_host(target_host)
        self.drop_after_bytes = drop_after_bytes
        self.drops = drops
        self.drops_done = 0
        self.requests: List[bytearray] = []
        self._lock = threading.Lock()
        self._listener: Optional[socket.socket] = None
        self._sockets: List[socket.socket] = []
        self._closed = threading.Event()

    @property
    def host(self) -> str:
        if self._listener is None:
            raise RuntimeError("proxy not started")
        return f"{LOOPBACK}:{self._listener.getsockname()[1]}"

    def start(self) -> DropProxy:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((LOOPBACK, 0))
        self._listener.listen(16)
        threading.Thread(target=self._accept_loop, name="drop-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._closed.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        if self._listener is not None:
            sockets.append(self._listener)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def __enter__(self) -> DropProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def request_text(self) -> List[str]:
        """What each connection sent to the target, decoded leniently (HTTP request heads and bodies)."""
        with self._lock:
            return [bytes(data).decode("latin-1") for data in self.requests]

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
                sent = bytearray()
                self.requests.append(sent)
            threading.Thread(target=self._pump_requests, args=(client, upstream, sent), daemon=True).start()
            threading.Thread(target=self._pump_responses, args=(upstream, client), daemon=True).start()

    def _pump_requests(self, client: socket.socket, upstream: socket.socket, sent: bytearray) -> None:
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                with self._lock:
                    sent += data
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            try:
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _pump_responses(self, upstream: socket.socket, client: socket.socket) -> None:
        forwarded = 0
        with self._lock:
            may_cut = self.drops_done < self.drops
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if may_cut and forwarded + len(data) > self.drop_after_bytes:
                    with self._lock:
                        cut = self.drops_done < self.drops
                        if cut:
                            self.drops_done += 1
                    if cut:
                        client.sendall(data[: self.drop_after_bytes - forwarded])
                        self._reset(client, upstream)
                        return
                    may_cut = False
                client.sendall(data)
                forwarded += len(data)
        except OSError:
            pass
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    @staticmethod
    def _reset(*sockets: socket.socket) -> None:
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class Fault:
    """What FaultProxy does to the next *times* responses to requests whose request line contains
    *match* (e.g. ``"/manifests/"``, ``"/blobs/sha256:ab"``):

    - ``"cut"``: the headers and *after* bytes of the body, then the connection is closed;
    - ``"corrupt"``: the byte at body offset *after* is flipped, the rest passes;
    - ``"stall"``: the headers and *after* bytes of the body, then nothing for *seconds*, then the rest;
    - ``"refuse"``: the connection is closed as soon as the request arrives (no reply at all).
    """

    def __init__(self, kind: str, match: str, times: int = 1, after: int = 0, seconds: float = 0.0):
        if kind not in ("cut", "corrupt", "stall", "refuse"):
            raise ValueError(f"unknown fault {kind!r}")
        self.kind, self.match, self.times, self.after, self.seconds = kind, match, times, after, seconds
        self.done = 0


class FaultProxy(DropProxy):
    """A loopback HTTP/1.1 proxy (no TLS) that injects the listed faults, each into its matching
    requests' responses, in order; ``log`` lists ``(request line, fault kind or None)``. Requests on a
    kept-alive connection are told apart because a client sends the next request only after it has
    read the whole previous response (no pipelining)."""

    def __init__(self, target_host: str, faults: List[Fault]):
        super().__init__(target_host, drop_after_bytes=0, drops=0)
        self.faults = list(faults)
        self.log: List[Tuple[str, Optional[str]]] = []

    def _pick(self, request_line: str) -> Optional[Fault]:
        with self._lock:
            for fault in self.faults:
                if fault.match in request_line and fault.done < fault.times:
                    fault.done += 1
                    self.log.append((request_line, fault.kind))
                    return fault
            self.log.append((request_line, None))
        return None

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        current: List[Optional[Fault]] = [None]
        started = threading.Event()  # set when a new request has been forwarded: its response is next

        def requests_pump() -> None:
            try:
                while True:
                    data = client.recv(65536)
                    if not data:
                        break
                    line = data.split(b"\r\n", 1)[0].decode("latin-1")
                    if line.split(" ")[0] in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
                        fault = self._pick(line)
                        if fault is not None and fault.kind == "refuse":
                            self._reset(client, upstream)
                            return
                        current[0] = fault
                        started.set()
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)

        threading.Thread(target=requests_pump, daemon=True).start()
        self._responses(upstream, client, current, started)

    def _responses(self, upstream, client, current, started) -> None:
        fault: Optional[Fault] = None
        body_seen = -1  # bytes of the current response's body forwarded; -1: still in the headers
        head = b""
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if started.is_set():  # the first bytes of a new response
                    started.clear()
                    fault, body_seen, head = current[0], -1, b""
                if fault is None:
                    client.sendall(data)
                    continue
                if body_seen < 0:
                    head += data
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        client.sendall(data)
                        continue
                    client.sendall(data[: len(data) - (len(head) - end - 4)])
                    data, body_seen = head[end + 4:], 0
                if fault.kind == "corrupt" and body_seen <= fault.after < body_seen + len(data):
                    i = fault.after - body_seen
                    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                elif fault.kind in ("cut", "stall") and body_seen + len(data) > fault.after:
                    keep = max(fault.after - body_seen, 0)
                    client.sendall(data[:keep])
                    if fault.kind == "cut":
                        self._reset(client, upstream)
                        return
                    time.sleep(fault.seconds)
                    data, body_seen, fault = data[keep:], body_seen + keep, None
                client.sendall(data)
                body_seen += len(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
