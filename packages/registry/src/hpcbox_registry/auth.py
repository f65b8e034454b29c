"""Registry authentication: ``WWW-Authenticate`` challenges, the Bearer token flow, Basic.

:class:`RegistryAuth` is a :class:`requests.auth.AuthBase` for one registry endpoint. It adds
the right ``Authorization`` header to each request (a cached Bearer token for the request's
scope, or Basic credentials) and learns from 401 replies what the registry wants. Tokens are
cached per scope until shortly before they expire; a 401 on a cached token drops it and fetches
a fresh one once; a second refusal is an :class:`AuthorizationError` (``insufficient_scope``,
denied) or :class:`AuthenticationError`.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from requests.auth import AuthBase

from hpcbox_registry.credentials import Credential
from hpcbox_registry.errors import AuthenticationError, AuthorizationError

#: A token is refreshed this many seconds before the registry says it expires (at most).
EXPIRY_MARGIN = 10.0
#: What the distribution spec says to assume when a token reply has no ``expires_in``.
DEFAULT_EXPIRES_IN = 60


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic", ...
    params: Dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def realm(self) -> Optional[str]:
        return self.params.get("realm")

    @property
    def service(self) -> Optional[str]:
        return self.params.get("service")

    @property
    def scope(self) -> Optional[str]:
        return self.params.get("scope")

    @property
    def error(self) -> Optional[str]:
        return self.params.get("error")


_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM_RE = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*(,)?')
_SCHEME_RE = re.compile(rf"\s*,*\s*({_TOKEN})(?:\s+|$)")


def parse_challenges(header: Optional[str]) -> List[Challenge]:
    """Parse a ``WWW-Authenticate`` header (RFC 7235) into challenges, in order.

    >>> parse_challenges('Bearer realm="https://a/token",service="reg",scope="repository:x:pull"')[0].scope
    'repository:x:pull'
    """
    out: List[Challenge] = []
    if not header:
        return out
    pos = 0
    text = header.strip()
    while pos < len(text):
        m = _SCHEME_RE.match(text, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: Dict[str, str] = {}
        while pos < len(text):
            pm = _PARAM_RE.match(text, pos)
            if not pm:
                break
            value = pm.group(2)
            if value is not None:
                value = re.sub(r"\\(.)", r"\1", value)
            else:
                value = pm.group(3)
            params[pm.group(1).lower()] = value
            pos = pm.end()
            if not pm.group(4):
                break
        out.append(Challenge(scheme, params))
        while pos < len(text) and text[pos] in ", ":
            pos += 1
    return out


_SCOPE_RE = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)(/|$)")


def scope_for_url(url: str, actions: str = "pull") -> Optional[str]:
    """The token scope a registry API URL needs: ``repository:<name>:pull``; None for ``/v2/``."""
    path = unquote(urlsplit(url).path)
    m = _SCOPE_RE.match(path)
    if m:
        return f"repository:{m.group(1)}:{actions}"
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    return None


def basic_header(credential: Credential) -> str:
    raw = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


#: fetch(realm, service, scopes, credential) -> (token, expires_in seconds or None)
TokenFetcher = Callable[[str, Optional[str], List[str], Optional[Credential]], Tuple[str, Optional[float]]]


class RegistryAuth(AuthBase):
    """Authentication state of one registry endpoint (``host[:port]``); thread-safe."""

    def __init__(
        self, host: str, credential: Optional[Credential] = None, fetch_token: Optional[TokenFetcher] = None
    ) -> None:
        self.host = host
        self.credential = credential
        self._fetch_token = fetch_token
        self._lock = threading.RLock()
        self._scheme: Optional[str] = None  # learnt from a challenge: "bearer" or "basic"
        self._challenge: Optional[Challenge] = None
        self._tokens: Dict[str, Tuple[str, float]] = {}  # scope ("" for none) -> (token, expires at)

    # -- what requests calls ---------------------------------------------------------------------
    def __call__(self, r):  # type: ignore[no-untyped-def]
        header = self.header_for(scope_for_url(r.url or ""))
        if header:
            r.headers["Authorization"] = header
        return r

    def header_for(self, scope: Optional[str]) -> Optional[str]:
        """The Authorization header to send now for ``scope`` (None: send nothing)."""
        with self._lock:
            if self._scheme == "basic" and self.credential is not None:
                return basic_header(self.credential)
            if self._scheme == "bearer":
                cached = self._tokens.get(scope or "")
                if cached and cached[1] > time.monotonic():
                    return f"Bearer {cached[0]}"
        return None

    # -- what the transport calls ----------------------------------------------------------------
    def set_credential(self, credential: Optional[Credential]) -> None:
        with self._lock:
            if credential != self.credential:
                self.credential = credential
                self._tokens.clear()

    def prepare(self, scope: Optional[str]) -> None:
        """Fetch a token for ``scope`` before the request when the registry is known to want one."""
        with self._lock:
            if self._scheme != "bearer" or self._challenge is None:
                return
            cached = self._tokens.get(scope or "")
            if cached and cached[1] > time.monotonic():
                return
            self._get_token(self._challenge, scope)

    def handle_unauthorized(
        self, www_authenticate: Optional[str], scope: Optional[str], sent: Optional[str], retried: bool
    ) -> None:
        """Learn from a 401. Returns when the request is worth sending again; raises otherwise.

        ``sent`` is the Authorization header the refused request carried; ``retried`` tells that
        this request was already sent again after a 401 once.
        """
        challenges = parse_challenges(www_authenticate)
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.realm), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        with self._lock:
            if bearer is not None:
                wanted = bearer.scope or scope
                if retried:
                    self._tokens.pop(scope or "", None)
                    self._refuse(bearer, wanted)
                self._scheme, self._challenge = "bearer", bearer
                self._tokens.pop(scope or "", None)
                if wanted != scope:
                    self._tokens.pop(wanted or "", None)
                token, expires_at = self._get_token(bearer, wanted)
                if scope != wanted:  # the registry asked for another scope: use that token here
                    self._tokens[scope or ""] = (token, expires_at)
                return
            if basic is not None:
                if self.credential is None:
                    raise AuthenticationError(
                        f"registry {self.host} requires a login",
                        f"log in first (hpcbox login {self.host})",
                        status=401,
                    )
                if retried or (sent or "").startswith("Basic "):
                    raise AuthenticationError(
                        f"registry {self.host} refused the username and password "
                        f"of {self.credential.username!r}",
                        status=401,
                    )
                self._scheme = "basic"
                return
        if challenges:
            names = ", ".join(c.scheme for c in challenges)
            raise AuthenticationError(
                f"registry {self.host} asks for unsupported authentication ({names})",
                "use a registry that supports Bearer tokens or Basic auth",
                status=401,
            )
        raise AuthenticationError(
            f"registry {self.host} answered 401 without a WWW-Authenticate challenge",
            f"log in (hpcbox login {self.host}) or check the registry",
            status=401,
        )

    def _refuse(self, challenge: Challenge, scope: Optional[str]) -> None:
        what = _scope_name(scope)
        if challenge.error == "insufficient_scope" or self.credential is None:
            who = "anonymous access" if self.credential is None else f"user {self.credential.username!r}"
            raise AuthorizationError(
                f"access to {what} on {self.host} denied for {who}"
                + (" (insufficient_scope)" if challenge.error == "insufficient_scope" else ""),
                status=401,
                code=challenge.error,
            )
        raise AuthenticationError(
            f"registry {self.host} refused the token for {what}"
            + (f" ({challenge.error})" if challenge.error else ""),
            status=401,
        )

    def _get_token(self, challenge: Challenge, scope: Optional[str]) -> Tuple[str, float]:
        if self._fetch_token is None:
            raise AuthenticationError(
                f"registry {self.host} wants a Bearer token and no token fetcher is set",
                "use RegistryClient, which sets one",
            )
        scopes = [scope] if scope else []
        token, expires_in = self._fetch_token(
            challenge.realm or "", challenge.service, scopes, self.credential
        )
        lifetime = float(expires_in) if expires_in else float(DEFAULT_EXPIRES_IN)
        margin = min(EXPIRY_MARGIN, lifetime / 10.0)
        entry = (token, time.monotonic() + lifetime - margin)
        self._tokens[scope or ""] = entry
        return entry


def _scope_name(scope: Optional[str]) -> str:
    if not scope:
        return "the registry"
    parts = scope.split(":")
    if len(parts) >= 3 and parts[0] == "repository":
        return f"repository {':'.join(parts[1:-1])}"
    return scope
