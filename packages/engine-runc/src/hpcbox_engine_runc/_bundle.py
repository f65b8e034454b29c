"""Read an OCI runtime bundle and check it: everything the runners need, validated in Python."""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from hpcbox_engine_runc.errors import BundleError

ANNOTATION_RUNTIME = "org.hpcbox.runc.runtime"
ANNOTATION_NET = "org.hpcbox.net"
ANNOTATION_OVERLAY_LOWER = "org.hpcbox.runc.overlay.lower"
ANNOTATION_OVERLAY_UPPER = "org.hpcbox.runc.overlay.upper"
ANNOTATION_OVERLAY_WORK = "org.hpcbox.runc.overlay.work"
RUNTIMES = ("builtin", "runc", "crun")
NETS = ("host", "none")

# mount(2) flags (linux/mount.h); options that are not flags go into the data string.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_DIRSYNC = 128
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

_SET_FLAGS = {
    "ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
    "sync": MS_SYNCHRONOUS, "dirsync": MS_DIRSYNC, "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME,
    "bind": MS_BIND, "rbind": MS_BIND | MS_REC, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME,
}
_CLEAR_FLAGS = {"rw": MS_RDONLY, "suid": MS_NOSUID, "dev": MS_NODEV, "exec": MS_NOEXEC}
# Propagation is always private in our own mount namespace; these options change nothing.
_IGNORED_OPTIONS = {
    "defaults", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable",
}
# The builtin runner always provides these itself; a config's non-bind mounts there are satisfied.
STANDARD_MOUNTS = {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}


# NamedTuples rather than dataclasses: importing dataclasses costs ~6 ms of every `hpcbox run`.
class Mount(NamedTuple):
    source: str
    destination: str  # inside the container
    type: str
    flags: int
    data: str
    options: List[str]

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)


class Bundle(NamedTuple):
    """The parts of an OCI runtime config that the engine honours, checked and made absolute."""

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
    terminal: bool
    no_new_privs: bool
    runtime: str
    net: str
    mounts: List[Mount]
    overlay: Optional[Tuple[List[str], str, str]] = None


def _fail(what: str, fix: str) -> BundleError:
    return BundleError(f"{what}: {fix}")


def load_config(bundle: Union[str, os.PathLike, Mapping[str, Any]], bundle_dir: Optional[str] = None):
    """Return (config dict, bundle directory) from a bundle dir, a config.json path or a dict."""
    if isinstance(bundle, Mapping):
        return dict(bundle), os.path.abspath(bundle_dir or os.getcwd())
    path = os.fspath(bundle)
    if os.path.isdir(path):
        config_path = os.path.join(path, "config.json")
    else:
        config_path = path
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


def parse_mount_options(options: List[str], name: str) -> Tuple[int, str]:
    flags, data = 0, []
    for option in options:
        if not isinstance(option, str):
            raise _fail(f"{name} option {option!r} is not a string", "list options as strings like 'ro'")
        if option in _SET_FLAGS:
            flags |= _SET_FLAGS[option]
        elif option in _CLEAR_FLAGS:
            flags &= ~_CLEAR_FLAGS[option]
        elif option not in _IGNORED_OPTIONS:
            data.append(option)
    return flags, ",".join(data)


def _parse_mounts(config: Dict[str, Any], bundle_dir: str) -> List[Mount]:
    mounts = []
    for index, raw in enumerate(config.get("mounts") or []):
        name = f"mounts[{index}]"
        if not isinstance(raw, dict):
            raise _fail(f"{name} is not an object", "write {destination, type, source, options}")
        destination = raw.get("destination")
        if not isinstance(destination, str) or not destination.startswith("/"):
            raise _fail(f"{name}.destination is {destination!r}", "give an absolute path in the container")
        destination = posixpath.normpath(destination)
        options = raw.get("options") or []
        if not isinstance(options, list):
            raise _fail(f"{name}.options is not a list", "give a list such as ['rbind', 'ro']")
        flags, data = parse_mount_options(options, name)
        mount_type = raw.get("type") or ("bind" if flags & MS_BIND else "")
        if mount_type == "bind":
            flags |= MS_BIND
        source = raw.get("source") or mount_type
        if not isinstance(source, str) or not isinstance(mount_type, str) or not mount_type:
            raise _fail(f"{name} ({destination}) has no type", "set type, e.g. 'bind' or 'tmpfs'")
        if flags & MS_BIND:
            source = os.path.join(bundle_dir, source)
            if not os.path.exists(source):
                raise _fail(f"{name}: bind source {source} does not exist", "create it or fix the path")
        mounts.append(Mount(source, destination, mount_type, flags, data, list(options)))
    return mounts


def _parse_overlay(annotations: Mapping[str, str], rootfs: str):
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


def parse_bundle(bundle, bundle_dir: Optional[str] = None) -> Bundle:
    """Check an OCI runtime config and return what the runners need; BundleError says what to fix."""
    config, bundle_dir = load_config(bundle, bundle_dir)
    process = config.get("process")
    if not isinstance(process, dict):
        raise _fail("the config has no process object", "add process.args, e.g. {'args': ['/bin/sh']}")
    args = process.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise _fail(f"process.args is {args!r}", "give a non-empty list of strings, e.g. ['/bin/sh']")
    env: Dict[str, str] = {}
    for item in process.get("env") or []:
        if not isinstance(item, str) or "=" not in item or "\0" in item:
            raise _fail(f"process.env entry {item!r} is malformed", "write entries as 'NAME=value'")
        key, value = item.split("=", 1)
        env[key] = value
    cwd = process.get("cwd") or "/"
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise _fail(f"process.cwd is {cwd!r}", "give an absolute path inside the container")
    user = process.get("user") or {}
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
    runtime = annotations.get(ANNOTATION_RUNTIME, "builtin")
    if runtime not in RUNTIMES:
        raise _fail(f"annotation {ANNOTATION_RUNTIME}={runtime!r} is unknown",
                    f"use one of {', '.join(RUNTIMES)}")
    namespaces = (config.get("linux") or {}).get("namespaces") or []
    for ns in namespaces:
        if isinstance(ns, dict) and ns.get("path") and runtime == "builtin":
            raise _fail(
                f"joining an existing {ns.get('type')} namespace ({ns['path']}) is not supported "
                "by the builtin runner",
                f"drop linux.namespaces[].path or set {ANNOTATION_RUNTIME}=runc",
            )
    new_net = any(
        isinstance(n, dict) and n.get("type") == "network" and not n.get("path") for n in namespaces
    )
    default_net = "none" if new_net else "host"
    net = annotations.get(ANNOTATION_NET, default_net)
    if net not in NETS:
        raise _fail(f"annotation {ANNOTATION_NET}={net!r} is unknown", "use 'host' or 'none'")
    hostname = config.get("hostname") or None
    if hostname is not None and (not isinstance(hostname, str) or len(hostname) > 64):
        raise _fail(f"hostname {hostname!r} is invalid", "give at most 64 characters")
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
        terminal=bool(process.get("terminal")),
        no_new_privs=bool(process.get("noNewPrivileges")),
        runtime=runtime,
        net=net,
        mounts=_parse_mounts(config, bundle_dir),
        overlay=_parse_overlay(annotations, rootfs),
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
        try:
            is_link = os.path.islink(candidate)
        except OSError:
            is_link = False
        if not is_link:
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
