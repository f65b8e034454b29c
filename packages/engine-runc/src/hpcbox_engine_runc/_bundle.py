"""The runc engine's view of an OCI bundle: the shared parser (hpcbox-oci-bundle) plus what only this
engine reads, the runtime to delegate to, the network mode and the overlay annotations."""

from __future__ import annotations

import os

import hpcbox_oci_bundle
from hpcbox_oci_bundle import STANDARD_MOUNTS, BundleLike, Mount, Record, contract, parse_mount_options

from hpcbox_engine_runc.errors import BundleError

TYPE_CHECKING = False  # typing is for type checkers only (it costs ~2 ms on every `hpcbox run`)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional, Tuple

ANNOTATION_RUNTIME = contract.ANNOTATION_RUNC_RUNTIME
ANNOTATION_NET = contract.ANNOTATION_NET
ANNOTATION_OVERLAY_LOWER = contract.ANNOTATION_RUNC_OVERLAY_LOWER
ANNOTATION_OVERLAY_UPPER = contract.ANNOTATION_RUNC_OVERLAY_UPPER
ANNOTATION_OVERLAY_WORK = contract.ANNOTATION_RUNC_OVERLAY_WORK
# Containers that give the same value share one user namespace (the ranks of an MPI job on a node).
ANNOTATION_SHARE_USERNS = contract.ANNOTATION_RUNC_SHARE_USERNS
ANNOTATION_IDMAP = contract.ANNOTATION_RUNC_IDMAP
ANNOTATION_CHOWN = contract.ANNOTATION_RUNC_CHOWN
IDMAPS = ("auto", "single")
CHOWNS = ("fake", "strict")
RUNTIMES = ("builtin", "runc", "crun")
NETS = ("host", "none")

__all__ = ["STANDARD_MOUNTS", "Bundle", "BundleLike", "Mount", "parse_bundle", "parse_mount_options",
           "resolve_in_root"]


class Bundle(Record):
    """The parts of an OCI runtime config that the engine honours, checked and made absolute: those of
    :class:`hpcbox_oci_bundle.Bundle` but annotations and namespaces, plus ``runtime`` (builtin, runc,
    crun), ``net`` (host, none), ``overlay`` (None, or (lower dirs, upper, work)), ``host_pid`` and
    ``host_ipc`` (linux.namespaces lists no pid / ipc namespace: the caller's are kept) and
    ``share_userns`` (the ANNOTATION_SHARE_USERNS group, or None), ``idmap`` (auto, single) and ``chown``
    (fake, strict). A plain class, not a named tuple: cheaper to define on every `hpcbox run`."""

    __slots__ = ("config", "bundle_dir", "rootfs", "args", "env", "cwd", "uid", "gid",  # noqa: RUF023 (field order)
                 "readonly", "hostname", "terminal", "no_new_privs", "runtime", "net", "mounts", "overlay",
                 "host_pid", "host_ipc", "share_userns", "idmap", "chown")

    def __init__(self, config: Dict[str, Any], bundle_dir: str, rootfs: str,  # noqa: PLR0917
                 args: List[str], env: Dict[str, str], cwd: str, uid: int, gid: int, readonly: bool,
                 hostname: Optional[str], terminal: bool, no_new_privs: bool, runtime: str, net: str,
                 mounts: List[Mount], overlay: Optional[Tuple[List[str], str, str]] = None,
                 host_pid: bool = False, host_ipc: bool = False, share_userns: Optional[str] = None,
                 idmap: str = "auto", chown: str = "fake"):
        self.config, self.bundle_dir, self.rootfs, self.args, self.env = config, bundle_dir, rootfs, args, env
        self.cwd, self.uid, self.gid, self.readonly, self.hostname = cwd, uid, gid, readonly, hostname
        self.terminal, self.no_new_privs, self.runtime, self.net = terminal, no_new_privs, runtime, net
        self.mounts, self.overlay, self.host_pid, self.host_ipc = mounts, overlay, host_pid, host_ipc
        self.share_userns, self.idmap, self.chown = share_userns, idmap, chown


def _fail(what: str, fix: str) -> BundleError:
    return BundleError(f"{what}: {fix}")


def _parse_overlay(annotations: Mapping[str, str]) -> Optional[Tuple[List[str], str, str]]:
    lower = annotations.get(ANNOTATION_OVERLAY_LOWER)
    if not lower:
        return None
    upper = annotations.get(ANNOTATION_OVERLAY_UPPER)
    work = annotations.get(ANNOTATION_OVERLAY_WORK)
    layers = [part for part in lower.split(":") if part]
    if not upper or not work:
        raise _fail(
            f"annotation {ANNOTATION_OVERLAY_LOWER} needs {ANNOTATION_OVERLAY_UPPER} "
            f"and {ANNOTATION_OVERLAY_WORK}",
            "give an upper and a work directory on the same filesystem",
        )
    for path in [*layers, upper, work]:
        if not os.path.isabs(path) or not os.path.isdir(path) or "," in path:
            raise _fail(f"overlay directory {path!r} is unusable",
                        "give existing absolute directories without commas")
    return layers, upper, work


def parse_bundle(bundle: BundleLike, bundle_dir: Optional[str] = None) -> Bundle:
    """Check an OCI runtime config and return what the runners need; BundleError says what to fix."""
    try:
        base = hpcbox_oci_bundle.parse_bundle(bundle, bundle_dir)
    except hpcbox_oci_bundle.BundleError as error:
        raise BundleError(str(error)) from None
    annotations = base.annotations
    runtime = annotations.get(ANNOTATION_RUNTIME, "builtin")
    if runtime not in RUNTIMES:
        raise _fail(f"annotation {ANNOTATION_RUNTIME}={runtime!r} is unknown",
                    f"use one of {', '.join(RUNTIMES)}")
    for ns in base.namespaces:
        if ns.get("path") and runtime == "builtin":
            raise _fail(
                f"joining an existing {ns.get('type')} namespace ({ns['path']}) is not supported "
                "by the builtin runner",
                f"drop linux.namespaces[].path or set {ANNOTATION_RUNTIME}=runc",
            )
    new_net = any(n.get("type") == "network" and not n.get("path") for n in base.namespaces)
    net = annotations.get(ANNOTATION_NET, "none" if new_net else "host")
    if net not in NETS:
        raise _fail(f"annotation {ANNOTATION_NET}={net!r} is unknown", "use 'host' or 'none'")
    types = {n.get("type") for n in base.namespaces}
    share = annotations.get(ANNOTATION_SHARE_USERNS) or None
    if share is not None and runtime != "builtin":
        raise _fail(f"annotation {ANNOTATION_SHARE_USERNS} is for the builtin runner only",
                    f"drop it or the {ANNOTATION_RUNTIME} annotation")
    choices = {}
    for annotation, allowed in ((ANNOTATION_IDMAP, IDMAPS), (ANNOTATION_CHOWN, CHOWNS)):
        choices[annotation] = annotations.get(annotation, allowed[0])
        if choices[annotation] not in allowed:
            raise _fail(f"annotation {annotation}={choices[annotation]!r} is unknown",
                        f"use one of {', '.join(allowed)}")
    return Bundle(
        config=base.config, bundle_dir=base.bundle_dir, rootfs=base.rootfs, args=base.args, env=base.env,
        cwd=base.cwd, uid=base.uid, gid=base.gid, readonly=base.readonly, hostname=base.hostname,
        terminal=base.terminal, no_new_privs=base.no_new_privs, runtime=runtime, net=net,
        mounts=base.mounts, overlay=_parse_overlay(annotations),
        # no list at all keeps the runner's full set (configs written before namespaces were honoured)
        host_pid=bool(types) and "pid" not in types, host_ipc=bool(types) and "ipc" not in types,
        share_userns=share, idmap=choices[ANNOTATION_IDMAP], chown=choices[ANNOTATION_CHOWN],
    )


def resolve_in_root(root: str, path: str, max_links: int = 40) -> str:
    """Host path of container `path`, following symlinks as if `root` were `/` (never leaving it)."""
    try:
        return hpcbox_oci_bundle.resolve_in_root(root, path, max_links)
    except hpcbox_oci_bundle.BundleError as error:
        raise BundleError(str(error)) from None
