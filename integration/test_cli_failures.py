"""`hpcbox` under failure: corrupted blobs, cut connections, SIGINT, bad input, a full disk.

Each failure must be one line `hpcbox: error: <problem>; <fix>` with a non-zero exit code, and leave
the store valid with nothing half-written listed.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from hpcbox_testing.ports import refused_port
from test_cli_common import (
    assert_store_valid,
    default_signals,
    hpcbox,
    hpcbox_env,
    images,
    login,
    login_args,
    ok,
    one_error,
)


class ThrottleProxy:
    """A loopback TCP proxy that sends responses at *rate* bytes per second (a slow registry)."""

    def __init__(self, target_host: str, rate: int):
        name, _, port = target_host.rpartition(":")
        self.target = (name, int(port))
        self.rate = rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.closed = threading.Event()
        self.sockets = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def __enter__(self) -> ThrottleProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.closed.set()
        for sock in [self.listener, *self.sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.rate), daemon=True).start()

    def _pump(self, source: socket.socket, dest: socket.socket, rate: int) -> None:
        try:
            while True:
                data = source.recv(4096)
                if not data:
                    break
                dest.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dest.shutdown(socket.SHUT_WR)


def _nothing_listed(home: Path) -> None:
    assert images(home) == []
    if (home / "images").exists():  # a command that failed early may not have created the store
        assert_store_valid(home)


def test_corrupted_blob_fails_with_a_digest_error_and_stores_nothing(registry_http, tmp_path):
    pushed = registry_http.push("busybox", "hpcbox/corrupt", "1")
    home = tmp_path / "home"
    manifest = __import__("json").loads(ok(hpcbox(home, "manifest", "inspect", pushed.ref)).stdout)
    layer = manifest["layers"][0]["digest"]
    data_file = registry_http.blob_path(layer)
    original = data_file.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    try:
        data_file.write_bytes(bytes(damaged))
        line = one_error(hpcbox(home, "pull", pushed.ref), code=6)
        assert layer in line and ("digest" in line.lower() or "corrupt" in line.lower()), line
    finally:
        data_file.write_bytes(original)
    _nothing_listed(home)
    assert not (home / "images/blobs/sha256" / layer.split(":")[1]).exists()
    assert [p for p in (home / "tmp").iterdir() if p.name.endswith(".partial")] == []
    ok(hpcbox(home, "pull", pushed.ref))  # the registry is healthy again: the same store pulls fine
    assert_store_valid(home)


def test_connection_cut_mid_blob_resumes_and_verifies(registry_http, drop_proxy, tmp_path):
    pushed = registry_http.push("busybox", "hpcbox/drop", "1")
    repo_tag = pushed.ref.split("/", 1)[1]
    home = tmp_path / "home"
    with drop_proxy(registry_http.host, 300_000) as proxy:
        proc = ok(hpcbox(home, "pull", f"{proxy.host}/{repo_tag}"))
        assert proxy.drops_done >= 1
        sent = "\n".join(proxy.request_text()).lower()
    assert "range: bytes=" in sent  # resumed, not restarted
    assert f"Digest: {pushed.digest}" in proc.stderr
    assert len(images(home)) == 1
    assert_store_valid(home)


def _size(path: Path) -> int:
    """0 for a file gone since it was listed (a finished download is renamed away)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def test_sigint_mid_pull_lists_nothing_and_the_next_pull_completes(registry_http, tmp_path):
    pushed = registry_http.push("busybox", "hpcbox/sigint", "1")
    repo_tag = pushed.ref.split("/", 1)[1]
    home = tmp_path / "home"
    with ThrottleProxy(registry_http.host, rate=100_000) as proxy:
        proc = subprocess.Popen(default_signals([sys.executable, "-m", "hpcbox", "--home", str(home), "pull",
                                                 f"{proxy.host}/{repo_tag}"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hpcbox_env())
        partials = []
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            partials = [p for p in (home / "tmp").glob("*.partial") if _size(p) > 0]
            if partials:
                break
            time.sleep(0.05)
        assert partials, "the pull never started a layer download"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert "interrupted" in one_error(result, code=130)
    _nothing_listed(home)
    ok(hpcbox(home, "pull", pushed.ref))  # straight to the registry this time
    assert [i["tags"] for i in images(home)] == [[pushed.ref]]
    assert_store_valid(home)
    assert list((home / "tmp").iterdir()) == []


def test_bad_reference_syntax(tmp_path):
    for text in ("Not A Ref", "Upper:1", "repo@sha256:1234", "host:5000/repo:bad:tag", "repo:"):
        line = one_error(hpcbox(tmp_path, "pull", text), code=2)
        assert "invalid" in line.lower() or "reference" in line.lower(), line
    _nothing_listed(tmp_path)


def test_unknown_image_remote_and_local(registry_http, tmp_path):
    line = one_error(hpcbox(tmp_path, "pull", f"{registry_http.host}/hpcbox/no-such-image:1"), code=3)
    assert "no-such-image" in line
    one_error(hpcbox(tmp_path, "inspect", "no-such-local-image"), code=3)
    one_error(hpcbox(tmp_path, "rmi", "no-such-local-image"), code=3)
    _nothing_listed(tmp_path)


def test_wrong_password(registry_tls_basic, tmp_path):
    opts = login_args(registry_tls_basic)
    proc = hpcbox(tmp_path, *opts, "login", "-u", registry_tls_basic.username, "--password-stdin",
                  registry_tls_basic.host, input="wrong-password\n")
    one_error(proc, code=4)
    assert not (tmp_path / "credentials.json").exists()
    pushed = registry_tls_basic.push("busybox", "hpcbox/wrong-pw", "1")
    one_error(hpcbox(tmp_path, *opts, "pull", pushed.ref), code=4)  # anonymous: refused
    one_error(hpcbox(tmp_path, "pull", pushed.ref), code=5)  # no CA given: TLS verification fails
    _nothing_listed(tmp_path)


def test_expired_tokens(registry_token, tmp_path):
    pushed = registry_token.push("busybox", "hpcbox/expiry", "1")
    home = tmp_path / "home"
    login(home, registry_token)
    server = registry_token.token_server
    server.issue_expired(1000)  # every token the server hands out is already expired
    try:
        line = one_error(hpcbox(home, "pull", pushed.ref), code=4)
    finally:
        server.clear_stale()  # the registries are shared by the whole session
    assert "token" in line.lower(), line
    _nothing_listed(home)
    ok(hpcbox(home, "pull", pushed.ref))  # valid tokens again: the same store pulls fine
    assert_store_valid(home)


def test_unreachable_registry(tmp_path):
    with refused_port() as port:  # held: no other server can take it while the pull runs
        line = one_error(hpcbox(tmp_path, "pull", f"127.0.0.1:{port}/hpcbox/x:1"), code=5)
    assert re.search(rf"127\.0\.0\.1:{port}\b", line), line
    _nothing_listed(tmp_path)


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_disk_full(registry_http, tmp_path):
    pushed = registry_http.push("busybox", "hpcbox/disk-full", "1")
    small_fs = os.environ.get("HPCBOX_TEST_SMALL_FS")
    if small_fs:
        home = Path(small_fs) / f"hpcbox-disk-full-{os.getpid()}"
        filler = Path(small_fs) / f"filler-{os.getpid()}"
        stat = os.statvfs(small_fs)
        free = stat.f_bavail * stat.f_frsize
        with open(filler, "wb") as handle:  # leave ~200 kB: less than the busybox layer
            handle.truncate(0)
            chunk = b"\0" * (1 << 20)
            remaining = max(free - 200_000, 0)
            while remaining > 0:
                remaining -= handle.write(chunk[: min(len(chunk), remaining)])
        try:
            line = one_error(hpcbox(home, "pull", pushed.ref), code=7)
        finally:
            filler.unlink()
        assert "no space left on device" in line
    else:
        home = tmp_path / "home"
        line = one_error(hpcbox(home, "pull", pushed.ref, preexec_fn=_limit_file_size(200_000)), code=7)
        assert "file too large" in line or "no space left" in line
    try:
        _nothing_listed(home)
        ok(hpcbox(home, "pull", pushed.ref))  # with room again, the same store completes the pull
        assert_store_valid(home)
    finally:  # the small filesystem is shared by every run of the suite: leave it empty
        shutil.rmtree(home, ignore_errors=True)


def test_search_on_a_registry_without_search(registry_http, tmp_path):
    line = one_error(hpcbox(tmp_path, "search", f"{registry_http.host}/busybox"))
    assert registry_http.host in line or "search" in line.lower(), line


def test_login_logout_cycle(registry_token, tmp_path):
    pushed = registry_token.push("busybox", "hpcbox/logout", "1")
    login(tmp_path, registry_token)
    creds = tmp_path / "credentials.json"
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
    assert registry_token.password not in ok(hpcbox(tmp_path, "version")).stdout
    ok(hpcbox(tmp_path, "logout", registry_token.host))
    one_error(hpcbox(tmp_path, "logout", registry_token.host), code=1)
    one_error(hpcbox(tmp_path, "pull", pushed.ref), code=4)  # hpcbox/* is not open to anonymous users
    _nothing_listed(tmp_path)
