"""Read an OCI runtime bundle and check the parts that an Apptainer/Singularity exec can honour."""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from hpcbox_engine_singularity.errors import BundleError

ANNOTATION_GPU = "org.hpcbox.singularity.gpu"
ANNOTATION_FAKEROOT = "org.hpcbox.singularity.fakeroot"
ANNOTATION_USERNS = "org.hpcbox.singularity.userns"
ANNOTATION_CONTAINALL = "org.hpcbox.singularity.containall"
ANNOTATION_NO_MOUNT = "org.hpcbox.singularity.no-mount"
ANNOTATION_NET = "org.hpcbox.net"  # shared with the other engines
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

BundleLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]


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


def load_config(bundle: BundleLike, bundle_dir: Optional[str] = None) -> Tuple[Dict[str, Any], str]:
    """Return (config dict, bundle directory) from a bundle dir, a config.json path or a dict."""
    if isinstance(bundle, Mapping):
        return dict(bundle), os.path.abspath(bundle_dir or os.getcwd())
    path = os.fspath(bundle)
    config_path = os.path.join(path, "config.json") if os.path.isdir(path) else path
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise _fail(f"no OCI runtime config at {config_path}",
                    "give a bundle directory holding config.json") from None
    except (OSError, ValueError) as error:
        raise _fail(f"cannot read {config_path} ({error})", "write a valid JSON OCI runtime config") from None
    if not isinstance(config, dict):
        raise _fail(f"{config_path} is not a JSON object", "write a valid OCI runtime config")
    return config, os.path.abspath(bundle_dir or os.path.dirname(os.path.abspath(config_path)))


def _int_field(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 0xFFFFFFFE:
        raise _fail(f"{name} is {value!r}", "give a number between 0 and 4294967294")
    return value


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


def _parse_mounts(config: Dict[str, Any], bundle_dir: str) -> Tuple[List[Bind], List[str]]:
    binds: List[Bind] = []
    scratch: List[str] = []
    raw_mounts = config.get("mounts") or []
    if not isinstance(raw_mounts, list):
        raise _fail("mounts is not a list", "write mounts as a list of {destination, type, source, options}")
    for index, raw in enumerate(raw_mounts):
        name = f"mounts[{index}]"
        if not isinstance(raw, dict):
            raise _fail(f"{name} is not an object", "write {destination, type, source, options}")
        destination = raw.get("destination")
        if not isinstance(destination, str) or not destination.startswith("/"):
            raise _fail(f"{name}.destination is {destination!r}", "give an absolute path in the container")
        destination = posixpath.normpath(destination)
        options = raw.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise _fail(f"{name}.options is not a list of strings", "give a list such as ['rbind', 'ro']")
        mount_type = raw.get("type") or ""
        if not isinstance(mount_type, str):
            raise _fail(f"{name}.type is {mount_type!r}", "set type, e.g. 'bind' or 'tmpfs'")
        is_bind = mount_type in ("bind", "rbind") or "bind" in options or "rbind" in options
        if not is_bind:
            if mount_type in HANDLED_TYPES and (destination in HANDLED_DESTINATIONS or
                                                destination.startswith(("/proc/", "/sys/", "/dev/"))):
                continue  # Apptainer provides it
            if mount_type == "tmpfs":
                _check_spec_path(destination, f"{name}: tmpfs destination")
                scratch.append(destination)
                continue
            kind = mount_type or "typeless"
            raise _fail(f"{name}: a {kind} mount on {destination} cannot be made by Apptainer",
                        "use a bind mount (type 'bind') or a tmpfs")
        source = raw.get("source")
        if not isinstance(source, str) or not source:
            raise _fail(f"{name} ({destination}) has no source", "give the host path to bind")
        source = os.path.normpath(os.path.join(bundle_dir, source))
        if not os.path.exists(source):
            raise _fail(f"{name}: bind source {source} does not exist", "create it or fix the path")
        _check_spec_path(source, f"{name}: bind source")
        _check_spec_path(destination, f"{name}: bind destination")
        readonly = False
        for option in options:
            if option == "ro":
                readonly = True
            elif option == "rw":
                readonly = False
        binds.append(Bind(source, destination, readonly))
    return binds, scratch


def parse_bundle(bundle: BundleLike, bundle_dir: Optional[str] = None) -> Bundle:
    """Check an OCI runtime config and return what the engine needs; BundleError says what to fix."""
    config, bundle_dir = load_config(bundle, bundle_dir)
    process = config.get("process")
    if not isinstance(process, dict):
        raise _fail("the config has no process object", "add process.args, e.g. {'args': ['/bin/sh']}")
    args = process.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) and a for a in args):
        raise _fail(f"process.args is {args!r}", "give a non-empty list of strings, e.g. ['/bin/sh']")
    env: Dict[str, str] = {}
    raw_env = process.get("env") or []
    if not isinstance(raw_env, list):
        raise _fail("process.env is not a list", "write entries as 'NAME=value'")
    for item in raw_env:
        if not isinstance(item, str) or "=" not in item or "\0" in item or item.startswith("="):
            raise _fail(f"process.env entry {item!r} is malformed", "write entries as 'NAME=value'")
        key, value = item.split("=", 1)
        env[key] = value
    cwd = process.get("cwd") or "/"
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise _fail(f"process.cwd is {cwd!r}", "give an absolute path inside the container")
    user = process.get("user") or {}
    if not isinstance(user, dict):
        raise _fail("process.user is not an object", "write {'uid': 0, 'gid': 0}")
    uid = _int_field(user.get("uid", 0), "process.user.uid")
    gid = _int_field(user.get("gid", 0), "process.user.gid")

    root = config.get("root") or {}
    root_path = root.get("path") if isinstance(root, dict) else None
    if not isinstance(root_path, str) or not root_path:
        raise _fail("root.path is missing", "set root.path to the rootfs directory (relative to the bundle)")
    rootfs = os.path.realpath(os.path.join(bundle_dir, root_path))
    if not os.path.isdir(rootfs):
        raise _fail(f"root.path {rootfs} is not a directory", "point root.path at an unpacked rootfs")

    annotations = config.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise _fail("annotations is not an object", "write annotations as string pairs")
    gpu = str(annotations.get(ANNOTATION_GPU, "")).strip().lower()
    if gpu not in GPUS:
        raise _fail(f"annotation {ANNOTATION_GPU}={gpu!r} is unknown", "use 'nvidia', 'rocm' or 'none'")
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
    no_mount = annotations.get(ANNOTATION_NO_MOUNT, DEFAULT_NO_MOUNT)
    if not isinstance(no_mount, str) or any(c.isspace() for c in no_mount):
        raise _fail(f"annotation {ANNOTATION_NO_MOUNT}={no_mount!r} is invalid",
                    "give a comma-separated list such as 'tmp,cwd' (empty for none)")
    linux = config.get("linux") or {}
    namespaces = (linux.get("namespaces") or []) if isinstance(linux, dict) else []
    if not isinstance(namespaces, list):
        raise _fail("linux.namespaces is not a list", "write [{'type': 'network'}, ...]")
    for ns in namespaces:
        if isinstance(ns, dict) and ns.get("path"):
            raise _fail(f"joining an existing {ns.get('type')} namespace ({ns['path']}) is not supported "
                        "by Apptainer", "drop linux.namespaces[].path or use the runc engine")
    new_net = any(isinstance(n, dict) and n.get("type") == "network" for n in namespaces)
    net = annotations.get(ANNOTATION_NET, "none" if new_net else "host")
    if net not in NETS:
        raise _fail(f"annotation {ANNOTATION_NET}={net!r} is unknown", "use 'host' or 'none'")
    hostname = config.get("hostname") or None
    if hostname is not None and (not isinstance(hostname, str) or len(hostname) > 64):
        raise _fail(f"hostname {hostname!r} is invalid", "give at most 64 characters")
    binds, scratch = _parse_mounts(config, bundle_dir)
    return Bundle(
        config=config,
        bundle_dir=bundle_dir,
        rootfs=rootfs,
        args=list(args),
        env=env,
        cwd=posixpath.normpath(cwd),
        uid=uid,
        gid=gid,
        readonly=bool(root.get("readonly")),
        hostname=hostname,
        binds=binds,
        scratch=scratch,
        gpu="" if gpu == "none" else gpu,
        fakeroot=fakeroot,
        userns=_flag(annotations, ANNOTATION_USERNS),
        containall=_flag(annotations, ANNOTATION_CONTAINALL),
        no_mount=no_mount,
        net=net,
    )


def resolve_in_root(root: str, path: str, max_links: int = 40) -> str:
    """Host path of container `path`, following symlinks as if `root` were `/` (never leaving it)."""
    todo = [part for part in path.split("/") if part]
    done: List[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if not os.path.islink(candidate):
            done.append(part)
            continue
        links += 1
        if links > max_links:
            raise _fail(f"too many symlinks resolving {path} in the rootfs", "fix the symlink loop")
        target = os.readlink(candidate)
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p] + todo
    return os.path.join(root, *done)
