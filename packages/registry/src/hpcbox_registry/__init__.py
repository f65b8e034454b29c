"""Docker Registry v2 / OCI distribution client: references, auth, manifests, verified blob downloads."""

from typing import TYPE_CHECKING

from hpcbox_registry import media_types
from hpcbox_registry.__about__ import __version__
from hpcbox_registry.errors import (
    AuthenticationError,
    AuthorizationError,
    CredentialStoreError,
    DigestMismatchError,
    InsecureRegistryError,
    InvalidPlatformError,
    InvalidReferenceError,
    NotFoundError,
    PlatformNotFoundError,
    RateLimitedError,
    RegistryConnectionError,
    RegistryError,
    RegistryServerError,
    TLSVerificationError,
    UnsupportedMediaTypeError,
)
from hpcbox_registry.reference import ImageReference

if TYPE_CHECKING:
    from hpcbox_registry.client import RegistryClient, SearchResult
    from hpcbox_registry.config import RegistryConfig
    from hpcbox_registry.credentials import Credential, CredentialStore
    from hpcbox_registry.manifest import Descriptor, Manifest, ResolvedImage
    from hpcbox_registry.platform import Platform

# The client pulls in requests/urllib3/ssl (~70 ms): load it on first use, so that a program that
# only parses references (e.g. `hpcbox create` of a local image) never pays for it.
_LAZY = {
    "RegistryClient": "client",
    "RegistryConfig": "config",
    "SearchResult": "client",
    "Credential": "credentials",
    "CredentialStore": "credentials",
    "Descriptor": "manifest",
    "Manifest": "manifest",
    "ResolvedImage": "manifest",
    "Platform": "platform",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpcbox_registry' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"hpcbox_registry.{module}"), name)
    globals()[name] = value
    return value

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "Credential",
    "CredentialStore",
    "CredentialStoreError",
    "Descriptor",
    "DigestMismatchError",
    "ImageReference",
    "InsecureRegistryError",
    "InvalidPlatformError",
    "InvalidReferenceError",
    "Manifest",
    "NotFoundError",
    "Platform",
    "PlatformNotFoundError",
    "RateLimitedError",
    "RegistryClient",
    "RegistryConfig",
    "RegistryConnectionError",
    "RegistryError",
    "RegistryServerError",
    "ResolvedImage",
    "SearchResult",
    "TLSVerificationError",
    "UnsupportedMediaTypeError",
    "__version__",
    "media_types",
]
