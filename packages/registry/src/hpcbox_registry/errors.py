"""The exception tree of hpcbox-registry.

Every error is a :class:`RegistryError`; ``str()`` of any of them is one line that names the
problem and, after ``"; "``, what to do about it::

    RegistryError
    ├── InvalidReferenceError       the image name cannot be parsed
    ├── AuthenticationError         the credentials were refused (or are needed and missing)
    ├── AuthorizationError          authenticated, but access denied / insufficient_scope
    ├── NotFoundError               manifest, blob or repository unknown
    ├── DigestMismatchError         content does not hash to the expected digest, or wrong size
    ├── RegistryConnectionError     unreachable: DNS, refused, reset, timeout
    │   └── TLSVerificationError    the server certificate could not be verified
    ├── InsecureRegistryError       plain http to a registry that is neither loopback nor allowed
    ├── RateLimitedError            429 after the retries (or a Retry-After beyond the bound)
    ├── RegistryServerError         5xx after the retries, or a reply that breaks the protocol
    ├── PlatformNotFoundError       no manifest for the requested platform in an index
    │   └── InvalidPlatformError    the platform text cannot be parsed (os/arch[/variant])
    ├── UnsupportedMediaTypeError   a manifest kind this client does not know
    └── CredentialStoreError        the credentials file cannot be read or written
"""

from __future__ import annotations

from typing import Optional


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class RegistryError(Exception):
    """Base of every error raised by hpcbox-registry.

    ``message`` names the problem, ``hint`` the fix; ``status`` is the HTTP status when one was
    received, ``url`` the URL that failed, ``code`` the distribution-spec error code if any.
    """

    default_hint = "see the message above"

    def __init__(
        self,
        message: str,
        hint: Optional[str] = None,
        *,
        status: Optional[int] = None,
        url: Optional[str] = None,
        code: Optional[str] = None,
    ) -> None:
        self.message = _one_line(message)
        self.hint = _one_line(hint if hint is not None else self.default_hint)
        self.status = status
        self.url = url
        self.code = code
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class InvalidReferenceError(RegistryError, ValueError):
    default_hint = "write it as [registry[:port]/]repository[:tag][@sha256:<64 hex digits>], e.g. alpine:3.19"


class AuthenticationError(RegistryError):
    default_hint = "check the username and password (hpcbox login REGISTRY)"


class AuthorizationError(RegistryError):
    default_hint = (
        "check the image name, or log in with an account that may access it (hpcbox login REGISTRY)"
    )


class NotFoundError(RegistryError):
    default_hint = "check the repository name, the tag or the digest"


class DigestMismatchError(RegistryError):
    default_hint = "the download was corrupted or the registry served other content; retry the pull"


class RegistryConnectionError(RegistryError):
    default_hint = "check the registry address, the network and the proxy settings (HTTPS_PROXY, NO_PROXY)"


class TLSVerificationError(RegistryConnectionError):
    default_hint = (
        "give the registry's CA with the ca_bundle option, or list the registry in insecure_registries "
        "if you trust the network"
    )


class InsecureRegistryError(RegistryError):
    default_hint = "add the registry to insecure_registries if you trust the network, or serve it over https"


class RateLimitedError(RegistryError):
    default_hint = "wait and retry later, or log in to get a higher pull limit"


class RegistryServerError(RegistryError):
    default_hint = "the registry failed; retry later or use a mirror"


class PlatformNotFoundError(RegistryError):
    default_hint = "pick one of the platforms listed with the platform option, e.g. linux/amd64"


class InvalidPlatformError(PlatformNotFoundError, ValueError):
    default_hint = "write it as os/architecture[/variant], e.g. linux/amd64 or linux/arm/v7"


class UnsupportedMediaTypeError(RegistryError):
    default_hint = "this manifest kind is not a container image this client can pull"


class CredentialStoreError(RegistryError):
    default_hint = "fix or remove the credentials file, then log in again"
