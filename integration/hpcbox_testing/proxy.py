"""A loopback TCP proxy that cuts connections after N bytes of response data (for resume tests).

``DropProxy(target_host, drop_after_bytes, drops=1)`` listens on 127.0.0.1; every accepted connection is
forwarded to ``target_host`` ("HOST:PORT"). The first ``drops`` connections that carry more than
``drop_after_bytes`` bytes from the target back to the client are closed right after that many bytes
(FIN: the client reads exactly that many, then a premature end of stream); later connections pass
untouched. ``drops_done`` counts the cuts made and ``requests`` keeps the bytes each connection sent
towards the target (to check e.g. a ``Range`` header).
"""

from __future__ import annotations

import socket
import threading
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
