"""The settings of a :class:`~hpcbox_registry.client.RegistryClient` (and of its transport).

A module of its own so that the transport and the blob downloads read the settings without
importing the client (which imports them): the import graph has no circle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence

from hpcbox_registry.__about__ import __version__
from hpcbox_registry.errors import RegistryConnectionError

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class RegistryConfig:
    """Settings of a :class:`RegistryClient`.

    ``insecure_registries``: hosts (``host``, ``host:port`` or CIDR) that may use plain http and
    unverified TLS; loopback registries may use http without being listed. ``ca_bundle``: a CA
    file to verify TLS with. ``mirrors``: ``{"docker.io": ["https://mirror.example", ...]}``,
    tried in order before the registry for manifests and blobs. ``timeout``: seconds for
    connecting and for each read. ``max_retries``: retries after 429/5xx/connection errors (and
    consecutive resumes without progress of a blob). ``backoff_factor``/``max_backoff``: the
    retry delays (factor * 2**n, bounded; a ``Retry-After`` above ``max_backoff`` fails at once).
    ``session_factory``: builds each thread's :class:`requests.Session` (for special transports).
    """

    insecure_registries: Sequence[str] = ()
    ca_bundle: Optional[str] = None
    mirrors: Mapping[str, Sequence[str]] = field(default_factory=dict)
    timeout: float = 30.0
    max_retries: int = 5
    max_workers: int = 4
    user_agent: str = f"hpcbox-registry/{__version__}"
    backoff_factor: float = 0.5
    max_backoff: float = 60.0
    session_factory: Optional[Callable[[], requests.Session]] = None

    def __post_init__(self) -> None:
        if isinstance(self.insecure_registries, str):
            object.__setattr__(self, "insecure_registries", (self.insecure_registries,))
        object.__setattr__(self, "insecure_registries", tuple(self.insecure_registries))
        mirrors = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in dict(self.mirrors or {}).items()}
        object.__setattr__(self, "mirrors", mirrors)
        if self.timeout <= 0 or self.max_retries < 0 or self.max_workers < 1:
            raise ValueError("RegistryConfig: timeout must be > 0, max_retries >= 0 and max_workers >= 1")
        if self.ca_bundle is not None and not os.path.exists(os.path.expanduser(self.ca_bundle)):
            raise RegistryConnectionError(
                f"CA bundle {self.ca_bundle} does not exist",
                "give the path of a PEM file with the registry's CA certificate",
            )


__all__ = ["RegistryConfig"]
