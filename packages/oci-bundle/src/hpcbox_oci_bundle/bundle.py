"""Read an OCI runtime bundle and check it: what every engine needs, validated in Python.

Only the cheapest standard modules are imported (os, posixpath): this runs on every `hpcbox run`.
The records are plain classes with ``__slots__`` for the same reason: a dataclass costs ~6 ms to
import, typing.NamedTuple ~2 ms, and even collections.namedtuple ~1 ms (collections, plus a class
built with exec for each record); json only for a config read from a file.
"""

from __future__ import annotations

import os
import posixpath

try:  # what collections.abc exports, without the rest of collections.abc's import
    from _collections_abc import Mapping
except ImportError:  # pragma: no cover - other interpreters
    from collections.abc import Mapping

from hpcbox_oci_bundle.errors import BundleError

TYPE_CHECKING = False  # typing is for type checkers only
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple, Union

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
# Propagation options change nothing for a container's own mounts.
_IGNORED_OPTIONS = {
    "defaults", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable",
}
# The kernel filesystems every engine provides itself (a namespace engine mounts them, the others
# show the host's): a config's non-bind mounts there are satisfied as they are.
STANDARD_MOUNTS = ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup")

if TYPE_CHECKING:
    BundleLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]
else:
    BundleLike = "str | os.PathLike[str] | Mapping[str, Any]"  # (for annotations only)


class Record:
    """Base of the package's records, plain classes with ``__slots__`` (cheaper to define than named
    tuples) whose fields are their slots, in order. Like the named tuples they replace: equal when of
    the same class with equal fields, hashed by their fields (so only when those are hashable), and a
    repr that names the fields. Treat records as read-only."""

    __slots__ = ()

    def _values(self) -> Tuple[Any, ...]:
        names: Tuple[str, ...] = self.__slots__
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        names: Tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({fields})"


class Mount(Record):
    """One mount: ``source`` (absolute host path for binds, else the filesystem's source name),
    ``destination`` (inside the container, normalised), ``type``, ``flags`` (mount(2) flags), ``data``
    (the options that are not flags), ``options`` (the config's list)."""

    __slots__ = ("source", "destination", "type", "flags", "data", "options")  # noqa: RUF023 (field order)

    def __init__(self, source: str, destination: str, type: str, flags: int,  # noqa: PLR0917
                 data: str, options: List[Any]):
        self.source, self.destination, self.type = source, destination, type
        self.flags, self.data, self.options = flags, data, options

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)

    @property
    def readonly(self) -> bool:
        return bool(self.flags & MS_RDONLY)


class Bundle(Record):
    """The parts of an OCI runtime config that hpcbox's engines honour, checked and made absolute:
    ``config`` (the whole dict), ``bundle_dir``, ``rootfs`` (absolute, real), ``args``, ``env`` (a dict),
    ``cwd``, ``uid``, ``gid``, ``readonly``, ``hostname`` (or None), ``terminal``, ``no_new_privs``,
    ``mounts`` (:class:`Mount` list), ``annotations`` (dict), ``namespaces`` (list of dicts)."""

    __slots__ = ("config", "bundle_dir", "rootfs", "args", "env", "cwd", "uid", "gid",  # noqa: RUF023 (field order)
                 "readonly", "hostname", "terminal", "no_new_privs", "mounts", "annotations", "namespaces")

    def __init__(self, config: Dict[str, Any], bundle_dir: str, rootfs: str,  # noqa: PLR0917
                 args: List[str], env: Dict[str, str], cwd: str, uid: int, gid: int, readonly: bool,
                 hostname: Optional[str], terminal: bool, no_new_privs: bool, mounts: List[Mount],
                 annotations: Dict[str, str], namespaces: List[Dict[str, Any]]):
        self.config, self.bundle_dir, self.rootfs, self.args, self.env = config, bundle_dir, rootfs, args, env
        self.cwd, self.uid, self.gid, self.readonly, self.hostname = cwd, uid, gid, readonly, hostname
        self.terminal, self.no_new_privs, self.mounts = terminal, no_new_privs, mounts
        self.annotations, self.namespaces = annotations, namespaces


def fail(what: str, fix: str) -> BundleError:
    """The package's error format, for engines that check their own annotations too."""
    return BundleError(f"{what}: {fix}")


def load_config(bundle: BundleLike, bundle_dir: Optional[str] = None) -> Tuple[Dict[str, Any], str]:
    """Return (config dict, bundle directory) from a bundle dir, a config.json path or a dict."""
    if isinstance(bundle, Mapping):
        return dict(bundle), os.path.abspath(bundle_dir or os.getcwd())
    path = os.fspath(bundle)
    config_path = os.path.join(path, "config.json") if os.path.isdir(path) else path
    try:
        with open(config_path, encoding="utf-8") as handle:
            import json  # (a config passed as a dict, as hpcbox run does, needs no json)

            config = json.load(handle)
    except FileNotFoundError:
        raise fail(f"no OCI runtime config at {config_path}",
                   "give a bundle directory holding config.json") from None
    except (OSError, ValueError) as error:
        raise fail(f"cannot read {config_path} ({error})", "write a valid JSON OCI runtime config") from None
    if not isinstance(config, dict):
        raise fail(f"{config_path} is not a JSON object", "write a valid OCI runtime config")
    return config, os.path.abspath(bundle_dir or os.path.dirname(os.path.abspath(config_path)))


def _int_field(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 0xFFFFFFFE:
        raise fail(f"{name} is {value!r}", "give a number between 0 and 4294967294")
    return int(value)


def parse_mount_options(options: List[Any], name: str = "mount") -> Tuple[int, str]:
    """(mount flags, data string) for OCI mount options such as ['rbind', 'ro', 'size=64m']."""
    flags, data = 0, []
    for option in options:
        if not isinstance(option, str):
            raise fail(f"{name} option {option!r} is not a string", "list options as strings like 'ro'")
        if option in _SET_FLAGS:
            flags |= _SET_FLAGS[option]
        elif option in _CLEAR_FLAGS:
            flags &= ~_CLEAR_FLAGS[option]
        elif option not in _IGNORED_OPTIONS:
            data.append(option)
    return flags, ",".join(data)


def _parse_mount(raw: Any, name: str, bundle_dir: str) -> Mount:
    if not isinstance(raw, dict):
        raise fail(f"{name} is not an object", "write {destination, type, source, options}")
    destination = raw.get("destination")
    if not isinstance(destination, str) or not destination.startswith("/") or "\0" in destination:
        raise fail(f"{name}.destination is {destination!r}", "give an absolute path in the container")
    destination = posixpath.normpath(destination)
    if destination.startswith("//"):
        destination = destination[1:]
    options = raw.get("options") or []
    if not isinstance(options, list):
        raise fail(f"{name}.options is not a list", "give a list such as ['rbind', 'ro']")
    flags, data = parse_mount_options(options, name)
    mount_type = raw.get("type") or ("bind" if flags & MS_BIND else "")
    if mount_type in ("bind", "rbind"):
        flags |= MS_BIND
    source = raw.get("source") or mount_type
    if not isinstance(source, str) or not isinstance(mount_type, str) or not mount_type:
        raise fail(f"{name} ({destination}) has no type", "set type, e.g. 'bind' or 'tmpfs'")
    if flags & MS_BIND:
        source = os.path.normpath(os.path.join(bundle_dir, source))
        if not os.path.exists(source):
            raise fail(f"{name}: bind source {source} does not exist", "create it or fix the path")
    return Mount(source, destination, mount_type, flags, data, list(options))


def _parse_process(process: Any) -> Tuple[List[str], Dict[str, str], str, int, int]:
    if not isinstance(process, dict):
        raise fail("the config has no process object", "add process.args, e.g. {'args': ['/bin/sh']}")
    args = process.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) and a for a in args):
        raise fail(f"process.args is {args!r}", "give a non-empty list of strings, e.g. ['/bin/sh']")
    env: Dict[str, str] = {}
    raw_env = process.get("env") or []
    if not isinstance(raw_env, list):
        raise fail("process.env is not a list", "write entries as 'NAME=value'")
    for item in raw_env:
        if not isinstance(item, str) or "=" not in item or "\0" in item or item.startswith("="):
            raise fail(f"process.env entry {item!r} is malformed", "write entries as 'NAME=value'")
        key, value = item.split("=", 1)
        env[key] = value
    cwd = process.get("cwd") or "/"
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise fail(f"process.cwd is {cwd!r}", "give an absolute path inside the container")
    user = process.get("user") or {}
    if not isinstance(user, dict):
        raise fail("process.user is not an object", "write {'uid': N, 'gid': N}")
    uid = _int_field(user.get("uid", 0), "process.user.uid")
    gid = _int_field(user.get("gid", 0), "process.user.gid")
    return list(args), env, posixpath.normpath(cwd), uid, gid


def parse_bundle(bundle: BundleLike, bundle_dir: Optional[str] = None) -> Bundle:
    """Check an OCI runtime config and return what the engines need; BundleError says what to fix.

    *bundle* is a bundle directory, a config.json path or the config as a dict (then *bundle_dir*,
    default the current directory, is what relative paths are relative to)."""
    config, bundle_dir = load_config(bundle, bundle_dir)
    args, env, cwd, uid, gid = _parse_process(config.get("process"))
    root = config.get("root") or {}
    root_path = root.get("path") if isinstance(root, dict) else None
    if not isinstance(root_path, str) or not root_path:
        raise fail("root.path is missing", "set root.path to the rootfs directory (relative to the bundle)")
    rootfs = os.path.realpath(os.path.join(bundle_dir, root_path))
    if not os.path.isdir(rootfs):
        raise fail(f"root.path {rootfs} is not a directory", "point root.path at an unpacked rootfs")
    annotations = config.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise fail("annotations is not an object of strings", "write annotations as string pairs")
    linux = config.get("linux") or {}
    namespaces = linux.get("namespaces") or [] if isinstance(linux, dict) else []
    if not isinstance(namespaces, list) or not all(isinstance(n, dict) for n in namespaces):
        raise fail("linux.namespaces is not a list of objects", "write [{'type': 'pid'}, ...]")
    hostname = config.get("hostname") or None
    if hostname is not None and (not isinstance(hostname, str) or len(hostname) > 64):
        raise fail(f"hostname {hostname!r} is invalid", "give at most 64 characters")
    mounts = config.get("mounts") or []
    if not isinstance(mounts, list):
        raise fail("mounts is not a list", "write mounts as a list of objects")
    process = config["process"]
    return Bundle(
        config=config,
        bundle_dir=bundle_dir,
        rootfs=rootfs,
        args=args,
        env=env,
        cwd=cwd,
        uid=uid,
        gid=gid,
        readonly=bool(root.get("readonly")),
        hostname=hostname,
        terminal=bool(process.get("terminal")),
        no_new_privs=bool(process.get("noNewPrivileges")),
        mounts=[_parse_mount(raw, f"mounts[{i}]", bundle_dir) for i, raw in enumerate(mounts)],
        annotations=dict(annotations),
        namespaces=[dict(n) for n in namespaces],
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
            raise fail(f"too many symlinks resolving {path} in the rootfs", "fix the symlink loop")
        target = os.readlink(candidate)
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p] + todo
    return os.path.join(root, *done)
