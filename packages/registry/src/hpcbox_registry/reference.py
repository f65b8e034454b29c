"""Image references (``[registry[:port]/]repository[:tag][@digest]``), parsed without I/O.

The grammar is the one of the distribution project's reference package; Docker Hub short names
are normalised the way Docker does it: ``alpine`` is ``docker.io/library/alpine:latest`` and
``user/app`` is ``docker.io/user/app:latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Optional, Tuple

from hpcbox_registry.errors import InvalidReferenceError

DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
NAME_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])"
_DOMAIN_RE = re.compile(rf"{_HOST}(?::[0-9]+)?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_TAG_HINT = "a tag has 1 to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
_HEX64_RE = re.compile(r"[a-f0-9]{64}")
#: Digest algorithms whose hex length is known; these are the ones the client can verify.
DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}


def normalize_registry(registry: str) -> str:
    """Canonical registry name: no scheme, no path, Docker Hub aliases folded to ``docker.io``."""
    name = registry.strip()
    for prefix in ("https://", "http://"):
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
    name = name.split("/", 1)[0]
    if name.lower() in _HUB_ALIASES:
        return DOCKER_HUB
    return name


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>`` (lower case), else raise."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise InvalidReferenceError(
            f"invalid digest {digest!r}", "a digest is written algorithm:hex, e.g. sha256:<64 hex digits>"
        )
    algorithm, hexpart = digest.split(":", 1)
    expected = DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise InvalidReferenceError(
            f"unsupported digest algorithm {algorithm!r} in {digest!r}", "use a sha256 or sha512 digest"
        )
    if len(hexpart) != expected or hexpart != hexpart.lower():
        raise InvalidReferenceError(
            f"invalid {algorithm} digest {digest!r}",
            f"a {algorithm} digest has exactly {expected} lower-case hex digits",
        )
    return digest


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


def _split_domain(name: str) -> Tuple[str, str]:
    """Split ``name`` into (registry, repository) with Docker's rule for the first component."""
    first, sep, rest = name.partition("/")
    if sep and _looks_like_domain(first):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    registry = normalize_registry(registry) if registry.lower() in _HUB_ALIASES else registry
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository


_PORT_RE = re.compile(r"(?:^|[^:]):(\d+)$")


def _check_port(registry: str, text: str) -> None:
    m = _PORT_RE.search(registry)
    if m and not 0 < int(m.group(1)) <= 65535:
        raise InvalidReferenceError(
            f"invalid port {m.group(1)} of registry {registry!r} in {text!r}", "a port is 1 to 65535"
        )


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference. ``tag`` is None when only a digest was given."""

    registry: str
    repository: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    def __post_init__(self) -> None:
        if not _DOMAIN_RE.fullmatch(self.registry or ""):
            raise InvalidReferenceError(
                f"invalid registry name {self.registry!r}",
                "a registry is a host name or address with an optional :port",
            )
        _check_port(self.registry, self.registry)
        _check_repository(self.repository, self.repository)
        if self.tag is not None and not _TAG_RE.fullmatch(self.tag):
            raise InvalidReferenceError(
                f"invalid tag {self.tag!r}",
                _TAG_HINT,
            )
        if self.digest is not None:
            validate_digest(self.digest)

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse ``text`` (no I/O). Raises :class:`InvalidReferenceError` with the reason."""
        if not isinstance(text, str):
            raise InvalidReferenceError(f"image reference must be a string, not {type(text).__name__}")
        s = text.strip()
        if not s:
            raise InvalidReferenceError(
                "empty image reference", "give an image name such as alpine or debian:12"
            )
        if "://" in s:
            raise InvalidReferenceError(
                f"invalid image reference {text!r}: no URL scheme allowed",
                "drop the http:// or https:// prefix; list plain-http registries in insecure_registries",
            )
        digest = None
        if "@" in s:
            s, digest = s.split("@", 1)
            validate_digest(digest)
        tag = None
        slash = s.rfind("/")
        colon = s.rfind(":")
        if colon > slash:
            s, tag = s[:colon], s[colon + 1 :]
            if not _TAG_RE.fullmatch(tag):
                raise InvalidReferenceError(
                    f"invalid tag {tag!r} in {text!r}",
                    "a tag has 1 to 128 characters of letters, digits, '_', '.' and '-', "
                    "not starting with '.' or '-'",
                )
        if not s:
            raise InvalidReferenceError(f"invalid image reference {text!r}: the repository name is missing")
        if _HEX64_RE.fullmatch(s):
            raise InvalidReferenceError(
                f"invalid image reference {text!r}: a 64-hex-digit string is an image id, not a name",
                "give a repository name, or a digest as name@sha256:<hex>",
            )
        registry, repository = _split_domain(s)
        if not _DOMAIN_RE.fullmatch(registry):
            raise InvalidReferenceError(
                f"invalid registry {registry!r} in {text!r}",
                "a registry is a host name or address with an optional :port",
            )
        _check_port(registry, text)
        _check_repository(repository, text)
        if len(f"{registry}/{repository}") > NAME_MAX:
            raise InvalidReferenceError(
                f"image name in {text!r} is longer than {NAME_MAX} characters",
                "use a shorter repository name",
            )
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/`` in the API: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> ImageReference:
        """A new reference pinned to ``digest`` (the tag, if any, is kept for display)."""
        validate_digest(digest)
        return replace(self, digest=digest)

    def with_tag(self, tag: str) -> ImageReference:
        """A new reference with ``tag`` and no digest."""
        return replace(self, tag=tag, digest=None)

    def familiar(self) -> str:
        """The short form Docker prints: ``alpine:latest``, ``user/app:1``, ``host:5000/app:1``."""
        text = str(self)
        if self.registry == DOCKER_HUB:
            text = text[len(DOCKER_HUB) + 1 :]
            if text.startswith("library/") and "/" not in self.repository[len("library/") :]:
                text = text[len("library/") :]
        return text

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _check_repository(repository: str, text: str) -> None:
    if not repository or not _PATH_RE.fullmatch(repository):
        if repository and repository.lower() != repository and _PATH_RE.fullmatch(repository.lower()):
            raise InvalidReferenceError(
                f"invalid repository name {repository!r} in {text!r}: repository names must be lower case",
                f"write it as {repository.lower()!r}",
            )
        raise InvalidReferenceError(
            f"invalid repository name {repository!r} in {text!r}",
            "repository path components use lower-case letters, digits and single '.', '_', '__' or '-' "
            "separators, joined by '/'",
        )
