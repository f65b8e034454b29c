"""Read and check an OCI runtime bundle for hpcbox's engines.

::

    from hpcbox_oci_bundle import parse_bundle, guest_bindings
    spec = parse_bundle("/path/to/bundle")        # or a config.json path, or the config as a dict
    spec.rootfs, spec.args, spec.env, spec.cwd, spec.uid, spec.mounts, spec.annotations
    for binding in guest_bindings(spec):           # engines without mount namespaces
        print(binding.guest, "->", binding.host, "ro" if binding.readonly else "rw")

Errors are :class:`BundleError` with one line: what is wrong, then how to fix it.

The contract every engine keeps (docs/architecture.md, "The engine contract") is here too:
:mod:`hpcbox_oci_bundle.contract` holds the exit codes, annotation keys, capabilities and the base
errors (:class:`EngineError`, :class:`UnavailableError`, with ``problem``, ``hint`` and ``code``);
:class:`Engine` (:mod:`hpcbox_oci_bundle.protocol`, loaded when first asked for) is the typed
protocol every engine object matches.

The engines also share the rules of ``run()`` (:mod:`hpcbox_oci_bundle.process`): the exit status
as a shell reports it and the caller's signals passed on to the container::

    return run_to_completion(lambda: Container(subprocess.Popen(argv)))
"""

from hpcbox_oci_bundle.__about__ import __version__
from hpcbox_oci_bundle.bindings import HOST_KERNEL_DIRS, Binding, guest_bindings, place_bindings
from hpcbox_oci_bundle.bundle import (
    MS_BIND,
    MS_RDONLY,
    MS_REC,
    STANDARD_MOUNTS,
    Bundle,
    BundleLike,
    Mount,
    Record,
    fail,
    load_config,
    parse_bundle,
    parse_mount_options,
    resolve_in_root,
)
from hpcbox_oci_bundle.contract import (
    CAPABILITIES,
    EXIT_CODES,
    EXIT_ENGINE,
    EXIT_NOT_EXECUTABLE,
    EXIT_NOT_FOUND,
    EngineError,
    Error,
    UnavailableError,
)
from hpcbox_oci_bundle.errors import BundleError
from hpcbox_oci_bundle.helpers import LIBEXEC_ENV, helper_file, helper_path, helper_problem
from hpcbox_oci_bundle.process import (
    FORWARDED_SIGNALS,
    TERMINAL_SIGNALS,
    Container,
    exit_status,
    note_run_ended,
    run_to_completion,
    runs_ended,
)


def __getattr__(name: str) -> object:
    # The protocol needs typing (~2 ms): loaded only when asked for, never by `hpcbox run`.
    if name in ("Engine", "Running"):
        from hpcbox_oci_bundle import protocol

        return getattr(protocol, name)
    raise AttributeError(f"module 'hpcbox_oci_bundle' has no attribute {name!r}")


__all__ = [
    "CAPABILITIES",
    "EXIT_CODES",
    "EXIT_ENGINE",
    "EXIT_NOT_EXECUTABLE",
    "EXIT_NOT_FOUND",
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
    "Engine",
    "EngineError",
    "Error",
    "Mount",
    "Record",
    "Running",
    "UnavailableError",
    "__version__",
    "exit_status",
    "fail",
    "guest_bindings",
    "helper_file",
    "helper_path",
    "helper_problem",
    "load_config",
    "note_run_ended",
    "parse_bundle",
    "parse_mount_options",
    "place_bindings",
    "resolve_in_root",
    "run_to_completion",
    "runs_ended",
]
