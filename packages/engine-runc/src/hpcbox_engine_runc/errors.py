"""Exceptions of hpcbox_engine_runc: every message is one line naming the problem and the fix."""

import hpcbox_oci_bundle


class EngineError(Exception):
    """The engine cannot run this bundle here."""


class BundleError(EngineError, hpcbox_oci_bundle.BundleError):
    """The OCI runtime bundle or config is invalid or asks for something unsupported."""


class UnavailableError(EngineError):
    """User namespaces (or the requested runtime) are not usable on this host."""
