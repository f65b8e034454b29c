"""A small fake Docker Registry v2 on 127.0.0.x for the unit tests (http.server, one thread per request).

It serves manifests, blobs (with Range), tag pages, /v1/search and a Bearer token endpoint, and can
be told to misbehave: canned replies (429/503 with Retry-After), a connection cut in the middle of
a blob, a server that ignores Range, blob redirects to another host.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import secrets
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    host: str


@dataclass
class Canned:
    pattern: str
    status: int
    headers: Dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    times: int = 1


class FakeRegistry:
    def __init__(self, address: str = "127.0.0.1") -> None:
        self.server = ThreadingHTTPServer((address, 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        self.host = f"{address}:{self.server.server_address[1]}"
        self.url = f"http://{self.host}"
        self.lock = threading.Lock()
        self.manifests: Dict[Tuple[str, str], Tuple[str, bytes]] = {}
        self.blobs: Dict[str, bytes] = {}
        self.tags: Dict[str, List[str]] = {}
        self.log: List[Seen] = []
        self.canned: List[Canned] = []
        self.page_size: Optional[int] = None
        self.search_index: List[dict] = []
        self.blob_redirect: Optional[str] = None
        self.ignore_range = False
        self.cut_after: Dict[str, int] = {}  # digest -> bytes sent before the connection drops (once)
        self.manifest_cuts: Dict[str, int] = {}  # tag or digest -> bytes sent before the drop (per count)
        self.manifest_cut_times = 1
        # auth: None, "basic" or "bearer"
        self.auth: Optional[str] = None
        self.users: Dict[str, str] = {}
        self.access: Dict[Optional[str], Set[str]] = {}  # user (None: anonymous) -> repositories
        self.tokens: Dict[str, Tuple[Optional[str], Set[str]]] = {}
        self.expires_in: Optional[int] = 300
        self.service = "fake-registry"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- content ---------------------------------------------------------------------------------
    def add_blob(self, data: bytes) -> dict:
        digest = sha256(data)
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def add_manifest(self, repo: str, ref: str, media_type: str, raw: bytes) -> str:
        digest = sha256(raw)
        self.manifests[(repo, ref)] = (media_type, raw)
        self.manifests[(repo, digest)] = (media_type, raw)
        if not ref.startswith("sha256:"):
            self.tags.setdefault(repo, [])
            if ref not in self.tags[repo]:
                self.tags[repo].append(ref)
        return digest

    def add_image(
        self,
        repo: str,
        tag: Optional[str],
        layers: List[bytes],
        *,
        arch: str = "amd64",
        os_name: str = "linux",
        variant: Optional[str] = None,
        docker: bool = False,
    ) -> dict:
        config = {
            "architecture": arch,
            "os": os_name,
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
        }
        if variant:
            config["variant"] = variant
        config_raw = json.dumps(config).encode()
        cfg = self.add_blob(config_raw)
        layer_type = (
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
            if docker
            else "application/vnd.oci.image.layer.v1.tar+gzip"
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json"
                if docker
                else "application/vnd.oci.image.config.v1+json",
                **cfg,
            },
            "layers": [{"mediaType": layer_type, **self.add_blob(x)} for x in layers],
        }
        raw = json.dumps(manifest, indent=2).encode()
        media = DOCKER_MANIFEST if docker else OCI_MANIFEST
        digest = self.add_manifest(repo, tag or sha256(raw), media, raw)
        return {"raw": raw, "digest": digest, "config": config_raw, "manifest": manifest, "media_type": media}

    def add_index(self, repo: str, tag: str, images: List[Tuple[dict, dict]], docker: bool = False) -> dict:
        index = {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST if docker else OCI_INDEX,
            "manifests": [
                {
                    "mediaType": img["media_type"],
                    "digest": img["digest"],
                    "size": len(img["raw"]),
                    "platform": plat,
                }
                for plat, img in images
            ],
        }
        raw = json.dumps(index).encode()
        digest = self.add_manifest(repo, tag, DOCKER_LIST if docker else OCI_INDEX, raw)
        return {"raw": raw, "digest": digest}

    def can(
        self,
        pattern: str,
        status: int,
        headers: Optional[Dict[str, str]] = None,
        body: bytes = b"",
        times: int = 1,
    ) -> None:
        """The next ``times`` requests whose path matches ``pattern`` get this reply instead."""
        self.canned.append(Canned(pattern, status, dict(headers or {}), body, times))

    def seen(self, part: str = "") -> List[Seen]:
        return [s for s in self.log if part in s.path]

    # -- auth ------------------------------------------------------------------------------------
    def challenge(self, scope: Optional[str], error: Optional[str] = None) -> str:
        if self.auth == "basic":
            return 'Basic realm="fake"'
        text = f'Bearer realm="{self.url}/token",service="{self.service}"'
        if scope:
            text += f',scope="{scope}"'
        if error:
            text += f',error="{error}"'
        return text

    def revoke_tokens(self) -> None:
        self.tokens.clear()


def _basic_user(header: str, users: Dict[str, str]) -> Tuple[bool, Optional[str]]:
    """(credentials were sent, the user if they are right)."""
    if not header.startswith("Basic "):
        return False, None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return True, None
    return True, (user if users.get(user) == password else None)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    @property
    def fake(self) -> FakeRegistry:
        return self.server.fake  # type: ignore[attr-defined]

    def reply(self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self.reply(status, body, {"Content-Type": "application/json", **(headers or {})})

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        with fake.lock:
            fake.log.append(Seen(self.command, path, query, dict(self.headers.items()), fake.host))
            canned = next((c for c in fake.canned if re.search(c.pattern, path)), None)
            if canned:
                canned.times -= 1
                if canned.times <= 0:
                    fake.canned.remove(canned)
        if canned:
            return self.reply(canned.status, canned.body, canned.headers)
        if path == "/token":
            return self.token(query)
        if path.startswith("/blobs/"):  # the storage side of a redirect: no auth
            return self.blob(path[len("/blobs/") :])
        if path == "/v1/search":
            return self.search(query)
        m = re.match(r"^/v2/(.+)/(manifests|blobs|tags)/(.*)$", path)
        repo = m.group(1) if m else None
        if not self.authorized(repo):
            return None
        if path == "/v2/":
            return self.reply(200, b"{}", {"Content-Type": "application/json"})
        if not m:
            return self.error(404, "NAME_UNKNOWN", "no such route")
        kind, rest = m.group(2), m.group(3)
        if kind == "manifests":
            item = fake.manifests.get((repo, rest))
            if item is None:
                return self.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            media_type, raw = item
            headers = {"Content-Type": media_type, "Docker-Content-Digest": sha256(raw)}
            with fake.lock:
                cut = fake.manifest_cuts.get(rest)
                if cut is not None:
                    fake.manifest_cut_times -= 1
                    if fake.manifest_cut_times <= 0:
                        del fake.manifest_cuts[rest]
            if cut is not None:
                return self.cut(200, raw, headers, cut)
            return self.reply(200, raw, headers)
        if kind == "blobs":
            if fake.blob_redirect:
                return self.reply(
                    307, b"", {"Location": f"{fake.blob_redirect}/blobs/{rest}?X-Signature=abc"}
                )
            return self.blob(rest)
        return self.tag_list(repo, query)

    def authorized(self, repo: Optional[str]) -> bool:
        fake = self.fake
        header = self.headers.get("Authorization", "")
        if fake.auth is None:
            return True
        if fake.auth == "basic":
            _sent, user = _basic_user(header, fake.users)
            if user is not None and (repo is None or repo in fake.access.get(user, set())):
                return True
            if user is not None:
                self.error(403, "DENIED", "requested access to the resource is denied")
                return False
            self.error(
                401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": fake.challenge(None)}
            )
            return False
        scope = f"repository:{repo}:pull" if repo else None
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
        grant = fake.tokens.get(token) if token else None
        if grant is not None and (scope is None or scope in grant[1]):
            return True
        error = "insufficient_scope" if grant is not None else None
        self.error(
            401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": fake.challenge(scope, error)}
        )
        return False

    def token(self, query: Dict[str, List[str]]) -> None:
        fake = self.fake
        sent, user = _basic_user(self.headers.get("Authorization", ""), fake.users)
        if sent and user is None:
            return self.reply(
                401, b'{"details":"incorrect username or password"}', {"Content-Type": "application/json"}
            )
        granted = set()
        for scope in query.get("scope", []):
            _, _, rest = scope.partition(":")
            repo = rest.rpartition(":")[0]
            if repo in fake.access.get(user, set()) or repo in fake.access.get(None, set()):
                granted.add(scope)
        tok = secrets.token_hex(8)
        fake.tokens[tok] = (user, granted)
        body: dict = {"token": tok}
        if fake.expires_in is not None:
            body["expires_in"] = fake.expires_in
        return self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def blob(self, digest: str) -> None:
        fake = self.fake
        data = fake.blobs.get(digest)
        if data is None:
            return self.error(404, "BLOB_UNKNOWN", "blob unknown")
        start = 0
        rng = self.headers.get("Range")
        status, headers = 200, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}
        if rng and not fake.ignore_range:
            m = re.match(r"bytes=(\d+)-$", rng)
            start = int(m.group(1)) if m else 0
            if start >= len(data):
                return self.reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        with fake.lock:
            cut = fake.cut_after.pop(digest, None)
        if cut is not None and self.command == "GET":
            return self.cut(status, body, headers, cut)
        return self.reply(status, body, headers)

    def cut(self, status: int, body: bytes, headers: Dict[str, str], cut: int) -> None:
        """Promise the whole body, send *cut* bytes of it, drop the connection."""
        self.send_response(status)
        headers["Content-Length"] = str(len(body))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body[:cut])
        self.wfile.flush()
        self.close_connection = True

    def tag_list(self, repo: str, query: Dict[str, List[str]]) -> None:
        fake = self.fake
        tags = sorted(fake.tags.get(repo, []))
        if not tags and repo not in fake.tags:
            return self.error(404, "NAME_UNKNOWN", "repository name not known to registry")
        last = query.get("last", [None])[0]
        if last:
            tags = [t for t in tags if t > last]
        headers = {"Content-Type": "application/json"}
        size = int(query.get("n", [fake.page_size or 0])[0] or 0) or None
        if size and len(tags) > size:
            tags = tags[:size]
            headers["Link"] = f'</v2/{repo}/tags/list?n={size}&last={tags[-1]}>; rel="next"'
        return self.reply(200, json.dumps({"name": repo, "tags": tags}).encode(), headers)

    def search(self, query: Dict[str, List[str]]) -> None:
        q = query.get("q", [""])[0]
        n = int(query.get("n", ["25"])[0])
        results = [r for r in self.fake.search_index if q in r["name"]][:n]
        body = {"num_results": len(results), "query": q, "results": results}
        return self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def make_layer(files: Dict[str, bytes]) -> bytes:
    """A gzip-compressed tar layer holding ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)
