"""Exceptions of hpcbox_engine_singularity: every message is one line naming the problem and the fix.

The classes are this engine's own (callers may catch them by engine) on the shared bases of
:mod:`hpcbox_oci_bundle.contract`, which carry ``problem``, ``hint`` and the exit ``code``.
"""

import hpcbox_oci_bundle


class EngineError(hpcbox_oci_bundle.EngineError):
    """The engine cannot run this bundle here."""


class BundleError(EngineError, hpcbox_oci_bundle.BundleError):
    """The OCI runtime bundle or config is invalid or asks for something Apptainer cannot do."""


class UnavailableError(EngineError, hpcbox_oci_bundle.UnavailableError):
    """No usable apptainer/singularity binary (missing, too old, or lacking a needed option)."""
