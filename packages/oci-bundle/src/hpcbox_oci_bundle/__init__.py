"""Read and check an OCI runtime bundle for hpcbox's engines.

::

    from hpcbox_oci_bundle import parse_bundle, guest_bindings
    spec = parse_bundle("/path/to/bundle")        # or a config.json path, or the config as a dict
    spec.rootfs, spec.args, spec.env, spec.cwd, spec.uid, spec.mounts, spec.annotations
    for binding in guest_bindings(spec):           # engines without mount namespaces
        print(binding.guest, "->", binding.host, "ro" if binding.readonly else "rw")

Errors are :class:`BundleError` with one line: what is wrong, then how to fix it.
"""

from hpcbox_oci_bundle.__about__ import __version__
from hpcbox_oci_bundle.bindings import HOST_KERNEL_DIRS, Binding, guest_bindings
from hpcbox_oci_bundle.bundle import (
    MS_BIND,
    MS_RDONLY,
    MS_REC,
    STANDARD_MOUNTS,
    Bundle,
    BundleLike,
    Mount,
    fail,
    load_config,
    parse_bundle,
    parse_mount_options,
    resolve_in_root,
)
from hpcbox_oci_bundle.errors import BundleError

__all__ = [
    "HOST_KERNEL_DIRS",
    "MS_BIND",
    "MS_RDONLY",
    "MS_REC",
    "STANDARD_MOUNTS",
    "Binding",
    "Bundle",
    "BundleError",
    "BundleLike",
    "Mount",
    "__version__",
    "fail",
    "guest_bindings",
    "load_config",
    "parse_bundle",
    "parse_mount_options",
    "resolve_in_root",
]
