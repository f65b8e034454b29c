"""The registry client: manifests, platform resolution, verified blob downloads, tags, search.

Over 500 lines: one class whose methods are the package's API. Its parts live apart: the settings
in :mod:`hpcbox_registry.config`, the HTTP layer (auth, retries, back-off) in
:mod:`hpcbox_registry.transport`, one host's resumable blob download in :mod:`hpcbox_registry.blobs`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, TypeVar, Union
from urllib.parse import quote, urljoin, urlsplit

import requests
import urllib3

from hpcbox_registry import blobs
from hpcbox_registry import media_types as mt
from hpcbox_registry.blobs import CHUNK_SIZE, STREAM_ERRORS, ProgressFn
from hpcbox_registry.config import RegistryConfig
from hpcbox_registry.credentials import Credential, CredentialStore
from hpcbox_registry.errors import (
    DigestMismatchError,
    InsecureRegistryError,
    InvalidReferenceError,
    PlatformNotFoundError,
    RegistryConnectionError,
    RegistryError,
    RegistryServerError,
    UnsupportedMediaTypeError,
)
from hpcbox_registry.manifest import (
    Descriptor,
    Manifest,
    ResolvedImage,
    compute_digest,
    schema1_config,
    schema1_payload,
)
from hpcbox_registry.platform import Platform, select_platform
from hpcbox_registry.reference import DOCKER_HUB, ImageReference, normalize_registry, validate_digest
from hpcbox_registry.transport.session import Transport, http_allowed

_T = TypeVar("_T")

#: Where the Docker Hub API lives (``docker.io`` is only the name).
DOCKER_HUB_API = "registry-1.docker.io"
#: Where Docker Hub's ``/v1/search`` lives.
DOCKER_HUB_INDEX = "index.docker.io"
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_CONFIG_SIZE = 64 * 1024 * 1024
_STREAM_ERRORS = STREAM_ERRORS  # (the name of 0.2.0)


@dataclass(frozen=True)
class SearchResult:
    name: str
    description: str = ""
    stars: int = 0
    official: bool = False
    automated: bool = False
    registry: str = DOCKER_HUB


def api_host(registry: str) -> str:
    """The host that serves the registry API for ``registry`` (Docker Hub's differs from its name)."""
    registry = normalize_registry(registry)
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def _mirror_host(entry: str, insecure: Sequence[str]) -> str:
    text = entry.strip()
    scheme = ""
    if "://" in text:
        scheme, text = text.split("://", 1)
    host = text.split("/", 1)[0]
    if not host:
        raise InvalidReferenceError(f"invalid mirror {entry!r}", "write a mirror as https://host[:port]")
    if scheme.lower() == "http" and not http_allowed(host, insecure):
        raise InsecureRegistryError(
            f"mirror {entry} is plain http", f"add {host} to insecure_registries if you trust the network"
        )
    return host


class RegistryClient:
    """A Docker Registry v2 / OCI distribution client. Thread-safe; a context manager."""

    def __init__(
        self, config: Optional[RegistryConfig] = None, credentials: Optional[CredentialStore] = None
    ) -> None:
        self.config = config or RegistryConfig()
        self.credentials = credentials
        self._logins: Dict[str, Credential] = {}
        self._lock = threading.Lock()
        self._pool: Optional[ThreadPoolExecutor] = None
        self._mirrors: Dict[str, List[str]] = {
            normalize_registry(reg): [_mirror_host(m, self.config.insecure_registries) for m in mirrors]
            for reg, mirrors in dict(self.config.mirrors).items()
        }
        self.transport = Transport(self.config, self._credential_for)

    # -- life cycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------------
    def _credential_for(self, host: str) -> Optional[Credential]:
        name = normalize_registry(host)
        with self._lock:
            if name in self._logins:
                return self._logins[name]
        if self.credentials is not None:
            return self.credentials.get(name)
        return None

    def endpoints(self, registry: str) -> List[str]:
        """Hosts to pull from for ``registry``: its mirrors in order, then the registry itself."""
        return [*self._mirrors.get(normalize_registry(registry), []), api_host(registry)]

    def _pull(self, ref: ImageReference, fn: Callable[[str], _T]) -> _T:
        """Run ``fn(host)`` on each endpoint in turn until one succeeds; the registry's error wins."""
        hosts = self.endpoints(ref.registry)
        for i, host in enumerate(hosts):
            try:
                return fn(host)
            except RegistryError:
                if i + 1 == len(hosts):
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _repo_path(ref: ImageReference) -> str:
        return "/v2/" + quote(ref.repository, safe="/")

    # -- API ----------------------------------------------------------------------------------------
    def ping(self, registry: str) -> str:
        """``GET /v2/`` (authenticating if asked to); returns the base URL that answered."""
        host = api_host(registry)
        resp = self.transport.request("GET", host, "/v2/", what=f"registry API of {registry}")
        resp.close()
        return self.transport.base_url(host)

    def login(self, registry: str, username: str, password: str) -> None:
        """Check ``username``/``password`` on ``registry`` (Basic or token flow); use them from now on.

        Raises :class:`AuthenticationError` if refused. Storing them is the caller's business
        (:meth:`CredentialStore.set`).
        """
        if not username:
            raise InvalidReferenceError("empty username", "give the account name to log in with")
        name = normalize_registry(registry)
        host = api_host(name)
        cred = Credential(username, password)
        auth = self.transport.auth_for(host)
        old = auth.credential
        auth.set_credential(cred)
        try:
            resp = self.transport.request("GET", host, "/v2/", what=f"login to {name}")
            resp.close()
        except RegistryError:
            auth.set_credential(old)
            raise
        with self._lock:
            self._logins[name] = cred

    def get_manifest(self, ref: ImageReference) -> Manifest:
        """The manifest of ``ref`` as served; by digest, its digest is verified."""
        return self._pull(ref, lambda host: self._with_body_retries(
            lambda: self._get_manifest_from(host, ref)))

    def _with_body_retries(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` again, with back-off, when the body it read was cut or damaged on the way (the
        transport retries only failures before a streamed body): manifests and configs get the
        same ``max_retries`` as blobs, which resume. A manifest that does not parse counts too: a
        body cut where no length was announced ends early without an error."""
        failures = 0
        while True:
            try:
                return fn()
            except (_BodyCut, _BrokenBody, DigestMismatchError):
                failures += 1
                if failures > self.config.max_retries:
                    raise
                self.transport.pause(failures - 1)

    def _get_manifest_from(self, host: str, ref: ImageReference) -> Manifest:
        path = f"{self._repo_path(ref)}/manifests/{quote(ref.reference, safe=':')}"
        resp = self.transport.request(
            "GET", host, path, headers={"Accept": mt.MANIFEST_ACCEPT}, stream=True, what=f"manifest {ref}"
        )
        try:
            raw = _read_limited(resp, MAX_MANIFEST_SIZE, f"manifest {ref}")
            content_type = resp.headers.get("Content-Type")
            header_digest = resp.headers.get("Docker-Content-Digest")
        finally:
            resp.close()
        if ref.digest:
            algorithm = ref.digest.split(":", 1)[0]
            if (
                compute_digest(raw, algorithm) != ref.digest
                and compute_digest(schema1_payload(raw), algorithm) != ref.digest
            ):
                raise DigestMismatchError(
                    f"manifest of {ref} from {host} does not match its digest (got "
                    f"{compute_digest(raw, algorithm)})",
                    url=resp.url,
                )
            return Manifest.from_bytes(raw, content_type, ref.digest)
        try:
            manifest = Manifest.from_bytes(raw, content_type)
        except RegistryServerError as exc:
            if isinstance(exc.__cause__, ValueError):
                raise _BrokenBody(f"manifest {ref} from {host}: {exc.message}", exc.hint) from exc
            raise
        if manifest.is_schema1 and header_digest:
            try:
                return Manifest.from_bytes(raw, content_type, validate_digest(header_digest))
            except InvalidReferenceError:
                pass
        return manifest

    def resolve(self, ref: ImageReference, platform: Union[Platform, str, None] = None) -> ResolvedImage:
        """Manifest, verified config and layers of ``ref`` for ``platform`` (default: this host)."""
        explicit = platform is not None
        wanted = Platform.parse(platform) if isinstance(platform, str) else (platform or Platform.host())
        top = self.get_manifest(ref)
        pinned = ref.with_digest(top.digest)
        index: Optional[Manifest] = None
        chosen: Optional[Platform] = None
        manifest = top
        if top.is_index:
            index = top
            entries = [d for d in top.manifests if not d.media_type or mt.is_manifest(d.media_type)]
            pick = select_platform(wanted, [d.platform for d in entries])
            if pick is None:
                have = sorted({str(d.platform) for d in entries if d.platform and d.platform.os != "unknown"})
                raise PlatformNotFoundError(
                    f"{ref} has no image for {wanted} (it has: {', '.join(have) or 'none'})",
                    f"pick one of {', '.join(have)} with the platform option" if have else None,
                )
            desc = entries[pick]
            chosen = desc.platform
            manifest = self.get_manifest(ref.with_digest(desc.digest))
            if desc.size >= 0 and len(manifest.raw) != desc.size:
                raise DigestMismatchError(
                    f"manifest {desc.digest} of {ref} has {len(manifest.raw)} bytes, "
                    f"the index says {desc.size}"
                )
            if manifest.is_index:
                raise UnsupportedMediaTypeError(
                    f"{ref}: an index inside an index is not supported", "pull the inner image by its digest"
                )
        if manifest.is_schema1:
            config = schema1_config(manifest.data)
            config_descriptor = Descriptor(mt.DOCKER_CONFIG, compute_digest(config), len(config))
        else:
            if manifest.config is None:
                raise RegistryServerError(f"the manifest of {ref} has no config", "the image is broken")
            config_descriptor = manifest.config
            if config_descriptor.media_type not in (mt.DOCKER_CONFIG, mt.OCI_CONFIG):
                raise UnsupportedMediaTypeError(
                    f"{ref} is not a container image (its config is {config_descriptor.media_type})"
                )
            config = self.fetch_blob_bytes(pinned, config_descriptor, MAX_CONFIG_SIZE)
        try:
            config_data = json.loads(config)
        except ValueError as exc:
            raise RegistryServerError(f"the config of {ref} is not JSON", "the image is broken") from exc
        if chosen is None and isinstance(config_data, dict) and config_data.get("architecture"):
            chosen = Platform(
                str(config_data.get("os") or "linux"),
                str(config_data["architecture"]),
                config_data.get("variant") or None,
            )
            if explicit and not wanted.matches(chosen):
                raise PlatformNotFoundError(
                    f"{ref} is only built for {chosen}, not {wanted}",
                    f"use platform {chosen}, or another image",
                )
        return ResolvedImage(
            reference=pinned,
            index=index,
            manifest=manifest,
            config=config,
            config_descriptor=config_descriptor,
            layers=manifest.layers,
            platform=chosen,
        )

    def fetch_blob_bytes(
        self, ref: ImageReference, descriptor: Descriptor, limit: int = MAX_CONFIG_SIZE
    ) -> bytes:
        """A small blob (a config) in memory, size and digest verified."""
        if descriptor.size > limit:
            raise RegistryServerError(
                f"blob {descriptor.digest} of {ref} is {descriptor.size} bytes, "
                f"more than {limit} allowed in memory",
                "use fetch_blob to a file",
            )

        def attempt(host: str) -> bytes:
            resp = self.transport.request(
                "GET",
                host,
                f"{self._repo_path(ref)}/blobs/{descriptor.digest}",
                stream=True,
                what=f"blob {descriptor.digest} of {ref.name}",
            )
            try:
                data = _read_limited(resp, limit, f"blob {descriptor.digest}", decode=False)
            finally:
                resp.close()
            _verify(data, descriptor, ref)
            return data

        return self._pull(ref, lambda host: self._with_body_retries(lambda: attempt(host)))

    def fetch_blob(
        self,
        ref: ImageReference,
        descriptor: Descriptor,
        dest_path: Union[str, os.PathLike[str]],
        progress: ProgressFn = None,
    ) -> str:
        """Stream blob ``descriptor`` of ``ref`` into ``dest_path``, verified; returns the path.

        A prefix already in ``dest_path`` is kept and the rest fetched with ``Range``; a connection
        cut mid-body resumes from the bytes written. ``progress(n)`` is called with the bytes added
        (negative when a server that ignores ``Range`` forces a restart). On a digest or size
        mismatch ``dest_path`` is deleted and :class:`DigestMismatchError` raised.
        """
        path = os.fspath(dest_path)
        algorithm = descriptor.digest.split(":", 1)[0]
        if algorithm not in hashlib.algorithms_available:
            raise UnsupportedMediaTypeError(
                f"cannot verify digest algorithm {algorithm!r} of {descriptor.digest}"
            )
        had_prefix = os.path.exists(path) and os.path.getsize(path) > 0
        try:
            return self._pull(ref, lambda host: self._fetch_blob_from(host, ref, descriptor, path, progress))
        except DigestMismatchError:
            if not had_prefix:
                raise
        # the prefix that was on disk may have been the corrupt part: once more from scratch
        return self._pull(ref, lambda host: self._fetch_blob_from(host, ref, descriptor, path, progress))

    def _fetch_blob_from(
        self, host: str, ref: ImageReference, descriptor: Descriptor, path: str, progress: ProgressFn
    ) -> str:
        blob_path = f"{self._repo_path(ref)}/blobs/{descriptor.digest}"
        return blobs.download(self.transport, host, blob_path, descriptor, path, progress=progress,
                              what=f"blob {descriptor.digest} of {ref.name}")

    def fetch_blobs(
        self,
        ref: ImageReference,
        descriptors: Iterable[Descriptor],
        dest_for: Callable[[Descriptor], Union[str, os.PathLike[str]]],
        progress: ProgressFn = None,
    ) -> Dict[str, str]:
        """Fetch several blobs in parallel (``max_workers`` threads); returns ``{digest: path}``.

        The same digest is fetched once. The first failure cancels the blobs not yet started and
        is raised once the running ones end. ``progress`` is called from the worker threads.
        """
        unique: Dict[str, Descriptor] = {}
        for desc in descriptors:
            unique.setdefault(desc.digest, desc)
        if not unique:
            return {}
        results: Dict[str, str] = {}
        pool = self._blob_pool()
        futures = {pool.submit(self.fetch_blob, ref, d, dest_for(d), progress): d for d in unique.values()}
        _done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for fut in pending:
            fut.cancel()
        wait(pending)
        for fut, desc in futures.items():
            if fut.cancelled():
                continue
            exc = fut.exception()
            if exc is not None:
                raise exc
            results[desc.digest] = fut.result()
        return results

    def _blob_pool(self) -> ThreadPoolExecutor:
        """One pool per client: its threads (and their sessions and connections) serve every pull."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.config.max_workers, thread_name_prefix="hpcbox-blob")
            return self._pool

    def list_tags(self, ref: ImageReference) -> List[str]:
        """All tags of ``ref``'s repository, following ``Link: <...>; rel="next"`` pages."""
        host = api_host(ref.registry)
        path: Optional[str] = f"{self._repo_path(ref)}/tags/list"
        tags: List[str] = []
        seen: Set[str] = set()
        while path and path not in seen and len(seen) < 10000:
            seen.add(path)
            resp = self.transport.request("GET", host, path, what=f"tags of {ref.name}", json_body=True)
            try:
                body = resp.json()  # it parsed: the transport asked again until it did
                link = resp.links.get("next", {}).get("url")
                base = resp.url
            finally:
                resp.close()
            tags.extend(str(t) for t in (body.get("tags") or []) if isinstance(body, dict))
            path = None
            if link:
                nxt = urlsplit(urljoin(base, link))
                path = nxt.path + (f"?{nxt.query}" if nxt.query else "")
        return tags

    def search(self, term: str, limit: int = 25, registry: Optional[str] = None) -> List[SearchResult]:
        """Docker Hub style search (``GET /v1/search?q=&n=``) on the registry's index.

        ``term`` may start with a registry (``myregistry:5000/app``) like ``docker search``.
        """
        if not term or not term.strip():
            raise InvalidReferenceError("empty search term", "give a word to search for, e.g. alpine")
        if not 1 <= int(limit) <= 100:
            raise InvalidReferenceError(f"search limit {limit} out of range", "use a limit from 1 to 100")
        term = term.strip()
        first, sep, rest = term.partition("/")
        if registry is None and sep and ("." in first or ":" in first or first == "localhost"):
            registry, term = first, rest
        registry = normalize_registry(registry or DOCKER_HUB)
        host = DOCKER_HUB_INDEX if registry == DOCKER_HUB else registry
        resp = self.transport.request(
            "GET",
            host,
            "/v1/search",
            params={"q": term, "n": str(int(limit))},
            what=f"search on {registry}",
            json_body=True,
        )
        try:
            body = resp.json()  # it parsed: the transport asked again until it did
        finally:
            resp.close()
        out: List[SearchResult] = []
        for item in (body.get("results") or []) if isinstance(body, dict) else []:
            if not isinstance(item, dict) or not item.get("name"):
                continue
            out.append(
                SearchResult(
                    name=str(item["name"]),
                    description=str(item.get("description") or ""),
                    stars=int(item.get("star_count") or 0),
                    official=bool(item.get("is_official")),
                    automated=bool(item.get("is_automated")),
                    registry=registry,
                )
            )
        return out[: int(limit)]


def _read_limited(resp: requests.Response, limit: int, what: str, decode: bool = True) -> bytes:
    parts: List[bytes] = []
    total = 0
    try:
        stream = (
            resp.iter_content(CHUNK_SIZE) if decode else resp.raw.stream(CHUNK_SIZE, decode_content=False)
        )
        for chunk in stream:
            total += len(chunk)
            if total > limit:
                raise RegistryServerError(
                    f"{what} is larger than {limit} bytes", "this is not an image manifest"
                )
            parts.append(chunk)
    except _STREAM_ERRORS as exc:
        raise _BodyCut(f"reading {what} failed ({_short_error(exc)})") from exc
    return b"".join(parts)


def _short_error(exc: BaseException) -> str:
    """An exception as a few words, not its repr chain (urllib3 wraps IncompleteRead twice)."""
    while exc.args and isinstance(exc.args[-1], BaseException):
        exc = exc.args[-1]
    partial = getattr(exc, "partial", None)
    cut = (http.client.IncompleteRead, urllib3.exceptions.IncompleteRead)
    if isinstance(exc, cut) and partial is not None:
        got = partial if isinstance(partial, int) else len(partial)
        return f"the connection closed after {got} bytes"
    return str(exc)[:200] or type(exc).__name__


class _BodyCut(RegistryConnectionError):
    """The body of a reply was cut (the request itself had succeeded): worth another try."""


class _BrokenBody(RegistryServerError):
    """A reply that does not parse (maybe cut where no length was announced): worth another try."""


def _verify(data: bytes, descriptor: Descriptor, ref: ImageReference) -> None:
    if descriptor.size >= 0 and len(data) != descriptor.size:
        raise DigestMismatchError(
            f"blob {descriptor.digest} of {ref.name} has {len(data)} bytes, expected {descriptor.size}"
        )
    algorithm = descriptor.digest.split(":", 1)[0]
    got = compute_digest(data, algorithm)
    if got != descriptor.digest:
        raise DigestMismatchError(
            f"blob {descriptor.digest} of {ref.name} does not match its digest (got {got})"
        )


__all__ = ["RegistryClient", "RegistryConfig", "SearchResult", "api_host"]
