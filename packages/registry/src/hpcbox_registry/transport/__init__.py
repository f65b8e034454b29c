"""HTTP transport: the one request function of the client (auth, retries, redirects, errors)."""

from hpcbox_registry.transport.session import Transport, http_allowed, is_loopback

__all__ = ["Transport", "http_allowed", "is_loopback"]
