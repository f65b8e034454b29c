"""All HTTP requests of the client go through :meth:`Transport.request`.

It picks the scheme (https; plain http only for loopback registries and ``insecure_registries``),
adds authentication, follows redirects itself (never sending ``Authorization`` to another host),
retries 429/5xx, connection failures, replies cut in the body (read there unless ``stream``) and
JSON replies that do not parse, with bounded exponential back-off honouring ``Retry-After``, and
turns failures into the exception tree of :mod:`hpcbox_registry.errors`. Streamed bodies are the
caller's to retry (the client re-fetches manifests and configs and resumes blobs).
Each thread gets its own :class:`requests.Session` (sessions are not thread-safe), which keeps
``trust_env`` so that proxies come from the environment.
"""
# Over 500 lines: one class, every request of the client (scheme, auth, retries, redirects, errors).

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import os
import random
import re
import tempfile
import threading
import time
import weakref
from typing import TYPE_CHECKING, Callable, Dict, FrozenSet, Iterable, List, Optional, Tuple
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from hpcbox_registry.auth import RegistryAuth, scope_for_url
from hpcbox_registry.credentials import Credential
from hpcbox_registry.errors import (
    AuthenticationError,
    AuthorizationError,
    InsecureRegistryError,
    NotFoundError,
    RateLimitedError,
    RegistryConnectionError,
    RegistryError,
    RegistryServerError,
    TLSVerificationError,
)

if TYPE_CHECKING:
    from hpcbox_registry.config import RegistryConfig

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
_NOT_FOUND_CODES = frozenset({"MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN", "TAG_INVALID"})
_DENIED_CODES = frozenset({"DENIED", "UNAUTHORIZED"})


def split_host_port(host: str) -> Tuple[str, Optional[int]]:
    """``"[::1]:5000"`` -> ("::1", 5000); ``"example.org"`` -> ("example.org", None)."""
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        return name, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        return name, int(port)
    return host, None


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (with or without a port). No DNS lookup."""
    name, _ = split_host_port(host)
    if name.lower() == "localhost" or name.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def http_allowed(host: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Docker's rule: plain http (and unverified TLS) only for loopback or listed registries.

    An entry matches ``host:port`` exactly, the host name on any port, or (a CIDR such as
    ``10.0.0.0/8``) an IP address literal inside it.
    """
    if is_loopback(host):
        return True
    name, _ = split_host_port(host)
    for item in insecure_registries:
        entry = item.strip()
        for prefix in ("http://", "https://"):
            if entry.lower().startswith(prefix):
                entry = entry[len(prefix) :]
        entry = entry.rstrip("/")
        if entry.lower() in (host.lower(), name.lower()):
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_details(resp: requests.Response) -> Tuple[Optional[str], str]:
    """(first distribution error code, a short message) from an error reply body."""
    try:
        body = resp.json()
        errors = body.get("errors") or []
        if errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("code") or "") or None, str(first.get("message") or first.get("code") or "")
        if isinstance(body.get("details"), str):
            return None, body["details"]
    except (ValueError, AttributeError):
        pass
    text = (resp.text or "").strip().splitlines()
    return None, (text[0][:200] if text else "")


def _is_cert_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "certificate" in text or ("hostname" in text and "match" in text)


def _origin(url: str) -> Tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class Transport:
    """The client's HTTP layer; one per :class:`~hpcbox_registry.client.RegistryClient`.

    Its retry policy is public for callers that retry work of their own (a body cut after the
    request succeeded, a blob download that resumes): :meth:`backoff` is the delay before retry
    *attempt* (0-based), :meth:`pause` sleeps it through :attr:`sleep`, which tests replace to
    record the delays instead of waiting."""

    def __init__(
        self,
        config: RegistryConfig,
        credential_for: Callable[[str], Optional[Credential]] = lambda host: None,
    ) -> None:
        self.config = config
        self._credential_for = credential_for
        self._local = threading.local()
        self._sessions: List[requests.Session] = []
        self._lock = threading.Lock()
        self._auths: Dict[str, RegistryAuth] = {}
        self._schemes: Dict[str, str] = {}
        self._combined_ca: Optional[str] = None
        self._ca_finalizer: Optional[weakref.finalize[..., Transport]] = None
        self.sleep: Callable[[float], None] = time.sleep

    # -- sessions ----------------------------------------------------------------------------------
    def session(self) -> requests.Session:
        """This thread's session (created on first use)."""
        sess = getattr(self._local, "session", None)
        if sess is None:
            factory = self.config.session_factory or requests.Session
            sess = factory()
            sess.trust_env = True
            sess.headers["User-Agent"] = self.config.user_agent
            self._local.session = sess
            with self._lock:
                self._sessions.append(sess)
        return sess

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for sess in sessions:
            sess.close()
        if self._ca_finalizer is not None:
            self._ca_finalizer()
            self._combined_ca = self._ca_finalizer = None
        self._local = threading.local()

    # -- auth --------------------------------------------------------------------------------------
    def auth_for(self, host: str) -> RegistryAuth:
        with self._lock:
            auth = self._auths.get(host)
            if auth is None:
                auth = RegistryAuth(host, self._credential_for(host), self._fetch_token)
                self._auths[host] = auth
            return auth

    def _fetch_token(
        self, realm: str, service: Optional[str], scopes: List[str], credential: Optional[Credential]
    ) -> Tuple[str, Optional[float]]:
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthenticationError(
                f"the registry's token realm {realm!r} is not an http(s) URL",
                "the registry is misconfigured; ask its operator",
            )
        if parts.scheme == "http" and not http_allowed(parts.netloc, self.config.insecure_registries):
            raise InsecureRegistryError(
                f"the token server {parts.netloc} is plain http",
                f"add {parts.netloc} to insecure_registries if you trust the network",
            )
        params: List[Tuple[str, str]] = []
        if service:
            params.append(("service", service))
        params.extend(("scope", s) for s in scopes)
        if credential is not None and credential.username:
            params.append(("account", credential.username))
        auth = (credential.username, credential.password) if credential is not None else None
        resp = self._send_with_retries(
            "GET", realm, params=params, auth=auth, origin_host=parts.netloc, what="token", json_body=True
        )
        try:
            if resp.status_code == 401:
                who = credential.username if credential else "anonymous"
                raise AuthenticationError(
                    f"the token server {parts.netloc} refused the credentials of {who!r}",
                    status=401,
                    url=realm,
                )
            if resp.status_code == 403:
                raise AuthorizationError(
                    f"the token server {parts.netloc} denied a token for "
                    f"{' '.join(scopes) or 'the registry'}",
                    status=403,
                    url=realm,
                )
            if resp.status_code != 200:
                self.raise_for_status(resp, "token")
            body = resp.json()  # parsed once already: _send_with_retries retried it until it did
        finally:
            resp.close()
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise RegistryServerError(
                f"the token server {parts.netloc} sent no token",
                "the registry's token service is broken; retry later",
            )
        expires = body.get("expires_in")
        try:
            expires_in = float(expires) if expires is not None else None
        except (TypeError, ValueError):
            expires_in = None
        return str(token), expires_in

    # -- scheme --------------------------------------------------------------------------------------
    def _verify_for(self, host: str) -> object:
        if http_allowed(host, self.config.insecure_registries) and not is_loopback(host):
            return False  # Docker: an insecure registry's https certificate is not checked
        if self.config.ca_bundle:
            return self._ca_file()
        return True

    def _ca_file(self) -> str:
        """The default CAs plus ``ca_bundle`` in one file: the option adds a CA, it does not replace them."""
        extra = os.path.expanduser(self.config.ca_bundle or "")
        if os.path.isdir(extra):
            return extra  # a c_rehash'ed directory: used as is
        with self._lock:
            if self._combined_ca is None or not os.path.exists(self._combined_ca):
                base = (
                    os.environ.get("REQUESTS_CA_BUNDLE")
                    or os.environ.get("CURL_CA_BUNDLE")
                    or requests.utils.DEFAULT_CA_BUNDLE_PATH
                )
                parts = []
                for path in (base, extra):
                    if path and os.path.isfile(path):
                        with open(path, "rb") as f:
                            parts.append(f.read().strip())
                fd, tmp = tempfile.mkstemp(prefix="hpcbox-ca-", suffix=".pem")
                with os.fdopen(fd, "wb") as f:
                    f.write(b"\n".join(parts) + b"\n")
                self._combined_ca = tmp
                self._ca_finalizer = weakref.finalize(self, _unlink_quietly, tmp)
            return self._combined_ca

    def _answers_tls(self, host: str) -> Optional[bool]:
        """Whether the loopback registry *host* completes a TLS handshake (unverified: only the protocol
        is asked); None where that is not asked here (other hosts, a session of the caller's, a proxy)
        or the connection fails: the https attempt then decides, as for every other host.

        A plain-http loopback registry then costs no https attempt, whose verifying context loads
        every CA certificate of the system (20-100 ms of CPU on our VMs, on every pull) only to see
        the handshake fail. A registry that does answer TLS is asked over verified https as before."""
        if not is_loopback(host) or self.config.session_factory is not None:
            return None
        import socket
        import ssl

        url = f"https://{host}/v2/"
        if self.session().proxies or requests.utils.get_environ_proxies(url, no_proxy=None):
            return None
        name, port = split_host_port(host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((name, port or 443), timeout=self.config.timeout) as sock:
                try:
                    with context.wrap_socket(sock, server_hostname=name):
                        return True
                except ssl.SSLError:
                    return False
        except OSError:
            return None

    def base_url(self, host: str) -> str:
        with self._lock:
            scheme = self._schemes.get(host, "https")
        return f"{scheme}://{host}"

    # -- the request function -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        host: str,
        path: str,
        *,
        headers: Optional[Dict[str, str]] = None,
        params: Optional[object] = None,
        stream: bool = False,
        what: str = "",
        ok: Iterable[int] = (200,),
        use_auth: bool = True,
        json_body: bool = False,
    ) -> requests.Response:
        """Send ``method`` to ``host`` + ``path`` with auth, retries and redirects.

        Returns the response (to be closed by the caller when ``stream``) when its status is in
        ``ok``; raises a :class:`RegistryError` subclass otherwise. With ``json_body`` a 200 reply
        whose body does not parse as JSON (a body cut where the length was not announced) is asked
        for again like a 503, and :class:`RegistryServerError` raised after the retries.
        """
        ok = frozenset(ok)
        with self._lock:
            known = self._schemes.get(host)
        if known:
            schemes = [known]
        elif not http_allowed(host, self.config.insecure_registries):
            schemes = ["https"]
        elif self._answers_tls(host) is False:
            schemes = ["http"]  # what the https attempt would find, without its cost
        else:
            schemes = ["https", "http"]
        last_exc: Optional[RegistryError] = None
        for i, scheme in enumerate(schemes):
            url = f"{scheme}://{host}{path}"
            try:
                resp = self._request_url(
                    method,
                    host,
                    url,
                    headers=headers,
                    params=params,
                    stream=stream,
                    what=what,
                    ok=ok,
                    use_auth=use_auth,
                    first_contact=known is None,
                    json_body=json_body,
                )
            except _SchemeFailed as exc:
                last_exc = exc.error
                if i + 1 < len(schemes):
                    continue
                raise exc.error from exc.__cause__
            if known is None:
                with self._lock:
                    self._schemes[host] = scheme
            return resp
        assert last_exc is not None
        raise last_exc

    def _request_url(
        self,
        method: str,
        host: str,
        url: str,
        *,
        headers: Optional[Dict[str, str]],
        params: Optional[object],
        stream: bool,
        what: str,
        ok: FrozenSet[int],
        use_auth: bool,
        first_contact: bool,
        json_body: bool = False,
    ) -> requests.Response:
        auth = self.auth_for(host) if use_auth else None
        scope = scope_for_url(url)
        auth_retried = False
        while True:
            if auth is not None:
                auth.prepare(scope)
            try:
                resp = self._send_with_retries(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    stream=stream,
                    auth=auth,
                    origin_host=host,
                    what=what,
                    json_body=json_body and not stream,
                )
            except (RegistryConnectionError, InsecureRegistryError) as exc:
                if (
                    first_contact
                    and urlsplit(url).scheme == "https"
                    and not isinstance(exc, TLSVerificationError)
                ):
                    raise _SchemeFailed(exc) from exc
                raise
            if (
                resp.status_code == 401
                and auth is not None
                and urlsplit(resp.url).netloc.lower() == host.lower()
            ):
                sent = resp.request.headers.get("Authorization") if resp.request is not None else None
                challenge = resp.headers.get("WWW-Authenticate")
                resp.close()
                auth.handle_unauthorized(challenge, scope, sent, auth_retried)
                auth_retried = True
                continue
            if resp.status_code in ok:
                return resp
            try:
                self.raise_for_status(resp, what)
            finally:
                resp.close()

    def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        headers: Optional[Dict[str, str]] = None,
        params: Optional[object] = None,
        stream: bool = False,
        auth: object = None,
        origin_host: Optional[str] = None,
        what: str = "",
        json_body: bool = False,
    ) -> requests.Response:
        """Send with redirects followed by hand and retries of 429/5xx/connection errors.

        Without ``stream`` the body is read inside the request, so a reply cut in its body is a
        connection error here and retried like one; ``json_body`` retries a 200 that is not JSON.
        """
        attempt = 0
        while True:
            try:
                resp = self._send_following_redirects(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    stream=stream,
                    auth=auth,
                    origin_host=origin_host,
                )
            except RegistryConnectionError as exc:
                if isinstance(exc, TLSVerificationError) or attempt >= self.config.max_retries:
                    raise
                if isinstance(exc.__cause__, requests.exceptions.SSLError) or _is_permanent(exc.__cause__):
                    raise  # a failed TLS handshake, a refused connection or an unknown name will fail again
                self.pause(attempt)
                attempt += 1
                continue
            if json_body and resp.status_code == 200 and not _parses_as_json(resp):
                if attempt >= self.config.max_retries:
                    where = urlsplit(resp.url).netloc or "the registry"
                    resp.close()
                    raise RegistryServerError(
                        f"{what or 'reply'}: {where} sent a reply that is not JSON "
                        f"{self.config.max_retries + 1} times",
                        "the registry is broken or does not support this request; retry later or "
                        "tell its admin",
                        status=200,
                        url=resp.url,
                    )
                resp.close()
                self.pause(attempt)
                attempt += 1
                continue
            if resp.status_code not in RETRY_STATUSES:
                return resp
            wait = retry_after_seconds(resp.headers.get("Retry-After"))
            if (wait is not None and wait > self.config.max_backoff) or attempt >= self.config.max_retries:
                try:
                    self.raise_for_status(resp, what, retry_after=wait)
                finally:
                    resp.close()
            resp.close()
            self.pause(attempt, wait)
            attempt += 1

    # -- retry policy ------------------------------------------------------------------------------
    def backoff(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Seconds to wait before retry *attempt* (0 for the first): ``backoff_factor * 2**attempt``
        plus up to a quarter of jitter, or the server's ``Retry-After``; at most ``max_backoff``."""
        if retry_after is not None:
            return min(retry_after, self.config.max_backoff)
        base = self.config.backoff_factor * (2**attempt)
        return float(min(self.config.max_backoff, base + random.uniform(0, base / 4)))

    def pause(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Sleep :meth:`backoff` (through :attr:`sleep`) before retry *attempt*; returns the delay."""
        delay = self.backoff(attempt, retry_after)
        self.sleep(delay)
        return delay

    # The private names of 0.2.0, for callers (and tests) that used them.
    def _backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        return self.backoff(attempt, retry_after)

    @property
    def _sleep(self) -> Callable[[float], None]:
        return self.sleep

    @_sleep.setter
    def _sleep(self, function: Callable[[float], None]) -> None:
        self.sleep = function

    def _send_following_redirects(
        self,
        method: str,
        url: str,
        *,
        headers: Optional[Dict[str, str]],
        params: Optional[object],
        stream: bool,
        auth: object,
        origin_host: Optional[str],
    ) -> requests.Response:
        sess = self.session()
        timeout = (self.config.timeout, self.config.timeout)
        for _ in range(MAX_REDIRECTS + 1):
            scheme, netloc = _origin(url)
            same_host = origin_host is not None and netloc == origin_host.lower()
            if scheme == "http" and not http_allowed(netloc, self.config.insecure_registries):
                raise InsecureRegistryError(
                    f"refusing plain http to {netloc} ({url.partition('?')[0]})",
                    f"add {netloc} to insecure_registries if you trust the network",
                )
            verify = self._verify_for(netloc)
            req_headers = dict(headers or {})
            if not same_host:
                req_headers.pop("Authorization", None)
            try:
                resp = sess.request(
                    method,
                    url,
                    headers=req_headers,
                    params=params,
                    stream=stream,
                    auth=auth if same_host else _NoAuth(),
                    timeout=timeout,
                    allow_redirects=False,
                    verify=verify,
                )
            except requests.exceptions.SSLError as exc:
                if _is_cert_error(exc):
                    raise TLSVerificationError(
                        f"TLS certificate of {netloc} could not be verified ({_short(exc)})", url=url
                    ) from exc
                if scheme == "https" and not http_allowed(netloc, self.config.insecure_registries):
                    raise InsecureRegistryError(
                        f"TLS handshake with {netloc} failed ({_short(exc)}); it may serve plain http",
                        f"add {netloc} to insecure_registries if it serves plain http on a network you trust",
                        url=url,
                    ) from exc
                raise RegistryConnectionError(
                    f"TLS handshake with {netloc} failed ({_short(exc)})", url=url
                ) from exc
            except requests.exceptions.ChunkedEncodingError as exc:  # the body was cut (not stream)
                raise RegistryConnectionError(
                    f"the reply of {netloc} to {method} {url.partition('?')[0]} was cut ({_short(exc)})",
                    "the network or the registry dropped the connection; retry later",
                    url=url,
                ) from exc
            except requests.exceptions.RequestException as exc:
                if _timed_out(exc):
                    raise RegistryConnectionError(
                        f"{netloc} did not answer within {self.config.timeout:g} s",
                        "check the network or raise the timeout",
                        url=url,
                    ) from exc
                if isinstance(exc, requests.exceptions.ConnectionError):
                    text = f"cannot connect to {netloc}"
                else:
                    text = f"request to {netloc} failed"
                raise RegistryConnectionError(f"{text} ({_short(exc)})", url=url) from exc
            if resp.status_code not in REDIRECT_STATUSES or "Location" not in resp.headers:
                return resp
            location = urljoin(resp.url, resp.headers["Location"])
            resp.close()
            target = location.partition(":")[0].lower()
            if target not in ("http", "https"):
                raise RegistryServerError(
                    f"{netloc} redirected {method} {url.partition('?')[0]} to a {target}: URL, which a "
                    "registry client never follows",
                    "the registry or its storage is misconfigured; tell its admin",
                    url=url,
                )
            if resp.status_code == 303:
                method = "GET" if method != "HEAD" else "HEAD"
            url, params = location, None
        raise RegistryServerError(
            f"more than {MAX_REDIRECTS} redirects from {origin_host or url}",
            "the registry or its storage is misconfigured",
        )

    # -- errors ----------------------------------------------------------------------------------------
    def raise_for_status(
        self, resp: requests.Response, what: str = "", retry_after: Optional[float] = None
    ) -> None:
        status = resp.status_code
        code, detail = _error_details(resp)
        where = urlsplit(resp.url).netloc or "the registry"
        subject = what or "request"
        extra = f": {detail}" if detail else ""
        if status == 404 or (code in _NOT_FOUND_CODES):
            raise NotFoundError(
                f"{subject} not found on {where}{extra}", status=status, url=resp.url, code=code
            )
        if status == 403 or code in _DENIED_CODES:
            raise AuthorizationError(
                f"{subject}: access denied by {where}{extra}", status=status, url=resp.url, code=code
            )
        if status == 401:
            raise AuthenticationError(
                f"{subject}: {where} requires authentication{extra}", status=status, url=resp.url, code=code
            )
        if status == 429 or code == "TOOMANYREQUESTS":
            when = f"; the registry asks to wait {retry_after:g} s" if retry_after is not None else ""
            raise RateLimitedError(
                f"{subject}: rate limited by {where}{extra}{when}", status=status, url=resp.url, code=code
            )
        if status >= 500:
            raise RegistryServerError(
                f"{subject}: {where} answered {status} {resp.reason or ''}{extra}",
                status=status,
                url=resp.url,
                code=code,
            )
        raise RegistryError(
            f"{subject}: {where} answered {status} {resp.reason or ''}{extra}",
            "check the request; this client may not support what the registry expects",
            status=status,
            url=resp.url,
            code=code,
        )


class _NoAuth(requests.auth.AuthBase):
    """Sends nothing, and stops requests from adding netrc credentials to a foreign host."""

    def __call__(self, r):  # type: ignore[no-untyped-def]
        r.headers.pop("Authorization", None)
        return r


class _SchemeFailed(Exception):
    def __init__(self, error: RegistryError) -> None:
        super().__init__(str(error))
        self.error = error


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _timed_out(exc: BaseException) -> bool:
    """A connect or read timeout (requests wraps one in the body of a reply as ConnectionError)."""
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    return any(isinstance(a, urllib3.exceptions.TimeoutError) for a in getattr(exc, "args", ()))


def _parses_as_json(resp: requests.Response) -> bool:
    try:
        resp.json()
    except ValueError:
        return False
    return True


def _is_permanent(exc: Optional[BaseException]) -> bool:
    text = str(exc).lower()
    return any(
        s in text
        for s in (
            "connection refused",
            "name or service not known",
            "failed to resolve",
            "nodename nor servname",
            "temporary failure in name resolution",
            "no address associated",
        )
    )


_CONN_PREFIX_RE = re.compile(r"^(?:<[^>]*>|\w*Connection(?:Pool)?\([^)]*\)): ")


def _short(exc: BaseException) -> str:
    """The root cause of a requests/urllib3 error, without the connection-pool wrapping."""
    inner: object = exc
    for _ in range(4):
        args = getattr(inner, "args", ())
        reason = getattr(inner, "reason", None)
        if reason is not None and not isinstance(reason, str):
            inner = reason
        elif args and isinstance(args[0], BaseException):
            inner = args[0]
        elif args and isinstance(args[-1], BaseException):  # urllib3: ("Connection broken: ...", cause)
            inner = args[-1]
        else:
            break
    if isinstance(inner, (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)):
        partial = inner.partial
        got = partial if isinstance(partial, int) else len(partial)
        return f"the connection closed after {got} bytes, {inner.expected} more were announced"
    text = " ".join(str(inner).split())
    text = _CONN_PREFIX_RE.sub("", text)
    return text if len(text) <= 160 else text[:157] + "..."
