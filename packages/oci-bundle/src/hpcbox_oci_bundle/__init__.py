"""Read and check an OCI runtime bundle for hpcbox's engines.

::

    from hpcbox_oci_bundle import parse_bundle, guest_bindings
    spec = parse_bundle("/path/to/bundle")        # or a config.json path, or the config as a dict
    spec.rootfs, spec.args, spec.env, spec.cwd, spec.uid, spec.mounts, spec.annotations
    for binding in guest_bindings(spec):           # engines without mount namespaces
        print(binding.guest, "->", binding.host, "ro" if binding.readonly else "rw")

Errors are :class:`BundleError` with one line: what is wrong, then how to fix it.

The engines also share the rules of ``run()`` (:mod:`hpcbox_oci_bundle.process`): the exit status
as a shell reports it and the caller's signals passed on to the container::

    return run_to_completion(lambda: Container(subprocess.Popen(argv)))
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
from hpcbox_oci_bundle.helpers import LIBEXEC_ENV, helper_path, helper_problem
from hpcbox_oci_bundle.process import (
    FORWARDED_SIGNALS,
    TERMINAL_SIGNALS,
    Container,
    exit_status,
    run_to_completion,
)

__all__ = [
    "FORWARDED_SIGNALS",
    "HOST_KERNEL_DIRS",
    "LIBEXEC_ENV",
    "MS_BIND",
    "MS_RDONLY",
    "MS_REC",
    "STANDARD_MOUNTS",
    "TERMINAL_SIGNALS",
    "Binding",
    "Bundle",
    "BundleError",
    "BundleLike",
    "Container",
    "Mount",
    "__version__",
    "exit_status",
    "fail",
    "guest_bindings",
    "helper_path",
    "helper_problem",
    "load_config",
    "parse_bundle",
    "parse_mount_options",
    "resolve_in_root",
    "run_to_completion",
]
