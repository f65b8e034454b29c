"""A small Bearer token server that behaves like Docker Hub's ``auth.docker.io/token``.

``GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]`` with optional Basic credentials
answers ``{"token", "access_token", "expires_in", "issued_at"}``. The token is an RS256 JWT whose header
carries ``x5c`` (the base64 DER of the signing certificate, which the registry lists as its
``rootcertbundle``) and whose claims are ``iss``, ``sub``, ``aud`` (= service), ``exp``, ``nbf``, ``iat``,
``jti`` and ``access`` = the requested actions that the ACL allows (possibly none: the registry then
answers 401 ``insufficient_scope``). Wrong credentials get 401; no credentials mean anonymous.

ACL: :meth:`TokenServer.grant` ``(username, repository_glob, actions)``; ``username=None`` grants to
everybody, anonymous included. Globs are :func:`fnmatch.fnmatchcase` patterns (``*`` also matches ``/``).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .ports import LOOPBACK
from .tls import KeyPair

# docker-registry accepts a token up to this long after its ``exp`` (clock skew leeway).
REGISTRY_LEEWAY_S = 60


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_scopes(values: Sequence[str]) -> List[Tuple[str, str, List[str]]]:
    """``["repository:a/b:pull,push other:x:y"]`` -> ``[("repository", "a/b", ["pull", "push"]), ...]``."""
    scopes = []
    for value in values:
        for scope in value.split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name:
                scopes.append((kind, name, [a for a in actions.split(",") if a]))
    return scopes


class TokenServer:
    """A threaded HTTP token server on 127.0.0.1; start() / stop(), or use it as a context manager.

    Attributes tests may use: ``url`` (the realm), ``service``, ``issuer``, ``ttl`` (token lifetime in
    seconds, may be lowered), ``issued`` (claims of every token issued, oldest first), ``requests``
    (``(username or None, scope list)`` of every request, including refused ones).
    """

    def __init__(
        self, signer: KeyPair, service: str = "hpcbox-test-registry", issuer: str = "hpcbox-test-auth"
    ):
        self.signer = signer
        self.service = service
        self.issuer = issuer
        self.ttl = 300
        self.issued: List[dict] = []
        self.requests: List[Tuple[Optional[str], list]] = []
        self._users: Dict[str, str] = {}
        self._acl: List[Tuple[Optional[str], str, Tuple[str, ...]]] = []
        self._stale_to_issue: List[float] = []
        self.never_stale: set = set()  # users issue_expired() spares (the fixture's own pusher)
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- configuration -------------------------------------------------------------------------
    def add_user(self, username: str, password: str) -> None:
        with self._lock:
            self._users[username] = password

    def grant(self, username: Optional[str], repository_glob: str, actions: Sequence[str]) -> None:
        """Allow ``actions`` (e.g. ``["pull"]``, ``["pull", "push"]``, ``["*"]``) on matching repositories."""
        with self._lock:
            self._acl.append((username, repository_glob, tuple(actions)))

    def issue_expired(self, count: int = 1, accepted_for: float = -REGISTRY_LEEWAY_S) -> None:
        """Make the next ``count`` tokens go stale: the registry accepts them only for ``accepted_for``
        more seconds (default: refuses them at once) while the response still advertises
        ``expires_in = ttl``, so a client believes them valid. Users in ``never_stale`` are spared."""
        with self._lock:
            self._stale_to_issue += [accepted_for] * count

    def clear_stale(self) -> None:
        """Forget stale tokens still to be issued (the registries are shared by the whole session)."""
        with self._lock:
            self._stale_to_issue.clear()

    @property
    def _expired_to_issue(self) -> int:  # early spelling some tests use; prefer clear_stale()
        return len(self._stale_to_issue)

    @_expired_to_issue.setter
    def _expired_to_issue(self, count: int) -> None:
        self._stale_to_issue[:] = [-REGISTRY_LEEWAY_S] * count

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("token server not started")
        return f"http://{LOOPBACK}:{self._httpd.server_address[1]}/token"

    def start(self) -> TokenServer:
        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the token logic -----------------------------------------------------------------------
    def check_password(self, username: str, password: str) -> bool:
        with self._lock:
            return username in self._users and self._users[username] == password

    def allowed_actions(
        self, username: Optional[str], kind: str, name: str, wanted: Sequence[str]
    ) -> List[str]:
        if kind != "repository":
            return []
        allowed: set = set()
        with self._lock:
            for who, glob, actions in self._acl:
                if (who is None or who == username) and fnmatch.fnmatchcase(name, glob):
                    allowed.update(actions)
        if "*" in allowed:
            return list(wanted)
        return [action for action in wanted if action in allowed]

    def make_token(
        self, username: Optional[str], scopes: Sequence[Tuple[str, str, List[str]]]
    ) -> Tuple[str, dict]:
        now = int(time.time())
        with self._lock:
            ttl = self.ttl
            stale = bool(self._stale_to_issue) and username not in self.never_stale
            accepted_for = self._stale_to_issue.pop(0) if stale else 0
        exp = int(now - REGISTRY_LEEWAY_S + accepted_for) if stale else now + ttl
        access = []
        for kind, name, wanted in scopes:
            access.append(
                {"type": kind, "name": name, "actions": self.allowed_actions(username, kind, name, wanted)}
            )
        claims = {
            "iss": self.issuer,
            "sub": username or "",
            "aud": self.service,
            "exp": exp,
            "nbf": min(now, exp) - 5,
            "iat": min(now, exp) - 5,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        header = {
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [base64.b64encode(self.signer.der_cert()).decode("ascii")],
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.signer.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        with self._lock:
            self.issued.append(claims)
        return signing_input + "." + _b64url(signature), claims


def _handler_for(server: TokenServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet: tests read server.requests instead
            pass

        def _answer(self, status: int, body: dict, headers: Optional[dict] = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path != "/token":
                self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": "only /token is served"}]})
                return
            query = parse_qs(url.query)
            scopes = parse_scopes(query.get("scope", []))
            username = None
            auth = self.headers.get("Authorization", "")
            if auth:
                kind, _, value = auth.partition(" ")
                try:
                    user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
                except (ValueError, UnicodeDecodeError):
                    user, password = "", ""
                server.requests.append((user or None, scopes))
                if kind.lower() != "basic" or not server.check_password(user, password):
                    self._answer(
                        401,
                        {"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]},
                        {"WWW-Authenticate": 'Basic realm="hpcbox-test-auth"'},
                    )
                    return
                username = user
            else:
                server.requests.append((None, scopes))
            if query.get("service", [server.service])[0] != server.service:
                self._answer(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
                return
            token, claims = server.make_token(username, scopes)
            issued_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["iat"]))
            self._answer(
                200, {"token": token, "access_token": token, "expires_in": server.ttl, "issued_at": issued_at}
            )

    return Handler
