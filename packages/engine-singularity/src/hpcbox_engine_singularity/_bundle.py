"""Read an OCI runtime bundle and check the parts that an Apptainer/Singularity exec can honour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

import hpcbox_oci_bundle
from hpcbox_oci_bundle import BundleLike, Mount, contract

from hpcbox_engine_singularity.errors import BundleError

ANNOTATION_GPU = contract.ANNOTATION_SINGULARITY_GPU
ANNOTATION_FAKEROOT = contract.ANNOTATION_SINGULARITY_FAKEROOT
ANNOTATION_USERNS = contract.ANNOTATION_SINGULARITY_USERNS
ANNOTATION_CONTAINALL = contract.ANNOTATION_SINGULARITY_CONTAINALL
ANNOTATION_NO_MOUNT = contract.ANNOTATION_SINGULARITY_NO_MOUNT
ANNOTATION_NET = contract.ANNOTATION_NET  # shared with the other engines
NETS = ("host", "none")
GPUS = ("", "none", "nvidia", "rocm")
FAKEROOT_CHOICES = ("auto", "true", "false")
DEFAULT_NO_MOUNT = "tmp,cwd"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")

# Apptainer sets these up itself (proc, sys, dev, devpts, shm, mqueue, cgroups): such non-bind
# mounts of the config are satisfied as they are and skipped.
HANDLED_TYPES = ("proc", "sysfs", "devpts", "tmpfs", "mqueue", "cgroup", "cgroup2", "shm")
HANDLED_DESTINATIONS = ("/proc", "/sys", "/sys/fs/cgroup", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")


@dataclass
class Bind:
    source: str  # absolute host path
    destination: str  # absolute path in the container, normalised
    readonly: bool


@dataclass
class Bundle:
    """What the engine needs from an OCI runtime config, checked and made absolute."""

    config: Dict[str, Any]
    bundle_dir: str
    rootfs: str
    args: List[str]
    env: Dict[str, str]
    cwd: str
    uid: int
    gid: int
    readonly: bool
    hostname: Optional[str]
    binds: List[Bind] = field(default_factory=list)
    scratch: List[str] = field(default_factory=list)  # tmpfs mounts elsewhere: --scratch
    gpu: str = ""
    fakeroot: str = "auto"
    userns: bool = False
    containall: bool = False
    no_mount: str = DEFAULT_NO_MOUNT
    net: str = "host"


def _fail(what: str, fix: str) -> BundleError:
    return BundleError(f"{what}: {fix}")


def _flag(annotations: Mapping[str, str], name: str) -> bool:
    value = str(annotations.get(name, "")).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _fail(f"annotation {name}={value!r} is not a boolean", "use 'true' or 'false'")


def _check_spec_path(path: str, what: str) -> None:
    # Apptainer's bind spec separates fields with ':' and binds with ','; such paths cannot be said.
    if ":" in path or "," in path:
        raise _fail(f"{what} {path!r} contains ':' or ','",
                    "Apptainer bind specs cannot express such paths; rename or bind a parent directory")


def _parse_mounts(mounts: List[Mount]) -> Tuple[List[Bind], List[str]]:
    binds: List[Bind] = []
    scratch: List[str] = []
    for index, mount in enumerate(mounts):
        name, destination = f"mounts[{index}]", mount.destination
        if not mount.is_bind:
            if mount.type in HANDLED_TYPES and (destination in HANDLED_DESTINATIONS or
                                                destination.startswith(("/proc/", "/sys/", "/dev/"))):
                continue  # Apptainer provides it
            if mount.type == "tmpfs":
                _check_spec_path(destination, f"{name}: tmpfs destination")
                scratch.append(destination)
                continue
            raise _fail(f"{name}: a {mount.type} mount on {destination} cannot be made by Apptainer",
                        "use a bind mount (type 'bind') or a tmpfs")
        _check_spec_path(mount.source, f"{name}: bind source")
        _check_spec_path(destination, f"{name}: bind destination")
        binds.append(Bind(mount.source, destination, mount.readonly))
    return binds, scratch


def _fakeroot(annotations: Mapping[str, str]) -> str:
    fakeroot = str(annotations.get(ANNOTATION_FAKEROOT, "auto")).strip().lower()
    if fakeroot in _TRUE:
        fakeroot = "true"
    elif fakeroot in _FALSE and fakeroot != "":
        fakeroot = "false"
    elif fakeroot == "":
        fakeroot = "auto"
    if fakeroot not in FAKEROOT_CHOICES:
        raise _fail(f"annotation {ANNOTATION_FAKEROOT}={fakeroot!r} is unknown",
                    "use 'auto', 'true' or 'false'")
    return fakeroot


def parse_bundle(bundle: BundleLike, bundle_dir: Optional[str] = None) -> Bundle:
    """Check an OCI runtime config and return what the engine needs; BundleError says what to fix."""
    try:
        base = hpcbox_oci_bundle.parse_bundle(bundle, bundle_dir)
    except hpcbox_oci_bundle.BundleError as error:
        raise BundleError(str(error)) from None
    annotations = base.annotations
    gpu = str(annotations.get(ANNOTATION_GPU, "")).strip().lower()
    if gpu not in GPUS:
        raise _fail(f"annotation {ANNOTATION_GPU}={gpu!r} is unknown", "use 'nvidia', 'rocm' or 'none'")
    no_mount = annotations.get(ANNOTATION_NO_MOUNT, DEFAULT_NO_MOUNT)
    if any(c.isspace() for c in no_mount):
        raise _fail(f"annotation {ANNOTATION_NO_MOUNT}={no_mount!r} is invalid",
                    "give a comma-separated list such as 'tmp,cwd' (empty for none)")
    for ns in base.namespaces:
        if ns.get("path"):
            raise _fail(f"joining an existing {ns.get('type')} namespace ({ns['path']}) is not supported "
                        "by Apptainer", "drop linux.namespaces[].path or use the runc engine")
    new_net = any(n.get("type") == "network" for n in base.namespaces)
    net = annotations.get(ANNOTATION_NET, "none" if new_net else "host")
    if net not in NETS:
        raise _fail(f"annotation {ANNOTATION_NET}={net!r} is unknown", "use 'host' or 'none'")
    binds, scratch = _parse_mounts(base.mounts)
    return Bundle(
        config=base.config,
        bundle_dir=base.bundle_dir,
        rootfs=base.rootfs,
        args=base.args,
        env=base.env,
        cwd=base.cwd,
        uid=base.uid,
        gid=base.gid,
        readonly=base.readonly,
        hostname=base.hostname,
        binds=binds,
        scratch=scratch,
        gpu="" if gpu == "none" else gpu,
        fakeroot=_fakeroot(annotations),
        userns=_flag(annotations, ANNOTATION_USERNS),
        containall=_flag(annotations, ANNOTATION_CONTAINALL),
        no_mount=no_mount,
        net=net,
    )


def resolve_in_root(root: str, path: str, max_links: int = 40) -> str:
    """Host path of container `path`, following symlinks as if `root` were `/` (never leaving it)."""
    try:
        return hpcbox_oci_bundle.resolve_in_root(root, path, max_links)
    except hpcbox_oci_bundle.BundleError as error:
        raise BundleError(str(error)) from None
