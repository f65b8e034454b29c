"""Docker Registry v2 / OCI distribution client: references, auth, manifests, verified blob downloads."""

from hpcbox_registry import media_types
from hpcbox_registry.__about__ import __version__
from hpcbox_registry.client import RegistryClient, RegistryConfig, SearchResult
from hpcbox_registry.credentials import Credential, CredentialStore
from hpcbox_registry.errors import (
    AuthenticationError,
    AuthorizationError,
    CredentialStoreError,
    DigestMismatchError,
    InsecureRegistryError,
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
from hpcbox_registry.manifest import Descriptor, Manifest, ResolvedImage
from hpcbox_registry.platform import Platform
from hpcbox_registry.reference import ImageReference

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
