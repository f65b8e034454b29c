"""The bundle's exception (the engines' base errors are in :mod:`hpcbox_oci_bundle.contract`)."""

from hpcbox_oci_bundle.contract import Error


class BundleError(Error, ValueError):
    """The bundle cannot be used; ``str(error)`` is one line: "<what is wrong>: <how to fix it>"."""
