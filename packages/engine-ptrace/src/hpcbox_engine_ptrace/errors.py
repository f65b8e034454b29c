"""Exceptions of hpcbox_engine_ptrace: every message is one line naming the problem and the fix."""

import hpcbox_oci_bundle


class EngineError(Exception):
    """The engine cannot run this bundle here."""


class BundleError(EngineError, hpcbox_oci_bundle.BundleError):
    """The OCI runtime bundle asks for something this engine cannot do (or is invalid)."""


class UnavailableError(EngineError):
    """ptrace (or the tracer executable) is not usable on this host."""
