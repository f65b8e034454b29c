"""The one exception of this package."""


class BundleError(ValueError):
    """The bundle cannot be used; ``str(error)`` is one line: "<what is wrong>: <how to fix it>"."""
