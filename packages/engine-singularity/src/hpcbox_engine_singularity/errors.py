"""Exceptions of hpcbox_engine_singularity: every message is one line naming the problem and the fix."""

import hpcbox_oci_bundle


class EngineError(Exception):
    """The engine cannot run this bundle here."""


class BundleError(EngineError, hpcbox_oci_bundle.BundleError):
    """The OCI runtime bundle or config is invalid or asks for something Apptainer cannot do."""


class UnavailableError(EngineError):
    """No usable apptainer/singularity binary (missing, too old, or lacking a needed option)."""
