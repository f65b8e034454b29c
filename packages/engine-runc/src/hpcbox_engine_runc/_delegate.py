"""Delegation: write the bundle's config as a rootless OCI bundle for an installed runc or crun."""

from __future__ import annotations

import copy
import json
import os
import tempfile
import uuid
from typing import Any, Dict, List, Tuple

from hpcbox_engine_runc._bundle import ANNOTATION_RUNTIME, STANDARD_MOUNTS, Bundle
from hpcbox_engine_runc.errors import BundleError

# What `runc spec --rootless` would give, less /sys and the cgroup mount (rootless runc cannot
# bind /sys on hosts like ours, runc 1.1 refuses it here).
_BASE_MOUNTS: List[Dict[str, Any]] = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
]
_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
    "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
]


def state_root(runtime: str) -> str:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.access(base, os.W_OK):
        base = tempfile.gettempdir()
    return os.path.join(base, f"hpcbox-{runtime}-{os.getuid()}")


def rootless_config(bundle: Bundle, terminal: bool) -> Dict[str, Any]:
    """The OCI config for `runc run`: single-id maps, no cgroup namespace, no /sys, absolute paths."""
    config: Dict[str, Any] = copy.deepcopy(bundle.config)
    config["ociVersion"] = config.get("ociVersion") or "1.0.2"
    process = config.setdefault("process", {})
    process["args"] = bundle.args
    process["env"] = [f"{k}={v}" for k, v in bundle.env.items()]
    process["cwd"] = bundle.cwd
    process["terminal"] = terminal
    process["user"] = {"uid": bundle.uid, "gid": bundle.gid}
    caps = _CAPS if bundle.uid == 0 else []
    process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    process.pop("rlimits", None)
    config["root"] = {"path": bundle.rootfs, "readonly": bundle.readonly}
    if bundle.hostname:
        config["hostname"] = bundle.hostname
    mounts = copy.deepcopy(_BASE_MOUNTS)
    for mount in bundle.mounts:
        if not mount.is_bind and mount.destination in STANDARD_MOUNTS:
            continue
        options = list(mount.options)
        if mount.is_bind and not {"bind", "rbind"} & set(options):
            options.append("rbind")
        mounts.append({"destination": mount.destination, "type": "bind" if mount.is_bind else mount.type,
                       "source": mount.source, "options": options})
    config["mounts"] = mounts
    linux = config.setdefault("linux", {})
    linux["namespaces"] = _namespaces(bundle, linux.get("namespaces") or [])
    linux["uidMappings"] = [{"containerID": bundle.uid, "hostID": os.geteuid(), "size": 1}]
    linux["gidMappings"] = [{"containerID": bundle.gid, "hostID": os.getegid(), "size": 1}]
    for key in ("resources", "cgroupsPath", "seccomp", "devices"):
        linux.pop(key, None)
    linux.setdefault("maskedPaths", ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"])
    return config


def _namespaces(bundle: Bundle, asked: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """New pid, ipc, uts, mount and user namespaces (and network for net=none); a namespace the
    config joins by path is joined (only runc or crun can)."""
    joined = {ns.get("type"): ns["path"] for ns in asked if isinstance(ns, dict) and ns.get("path")}
    types = ["pid", "ipc", "uts", "mount", "user"] + (["network"] if bundle.net == "none" else [])
    types += [kind for kind in joined if kind not in types and isinstance(kind, str)]
    return [{"type": kind, "path": joined[kind]} if kind in joined else {"type": kind} for kind in types]


def prepare(bundle: Bundle, runtime: str, binary: str, terminal: bool) -> Tuple[List[str], str]:
    """Write the delegated bundle; return (argv, bundle dir to remove afterwards)."""
    if runtime == "runc" and (bundle.uid, bundle.gid) != (0, 0):
        # runc 1.1 looks up the host id of container root and refuses a map without it, and a
        # rootless caller can map one id only (no newuidmap ranges here).
        raise BundleError(
            f"runc rootless runs only as container root with a single-id map, not as user "
            f"{bundle.uid}:{bundle.gid}; drop process.user or use the builtin runtime "
            f"(remove the {ANNOTATION_RUNTIME} annotation)"
        )
    work = tempfile.mkdtemp(prefix=f"hpcbox-{runtime}-bundle-")
    with open(os.path.join(work, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(rootless_config(bundle, terminal), handle)
    root = state_root(runtime)
    os.makedirs(root, mode=0o700, exist_ok=True)
    argv = [binary, "--root", root, "run", "--bundle", work, container_name()]
    if runtime == "runc":  # its own messages to a log, read back to tell its failures apart
        from hpcbox_engine_runc._runc_retry import log_options

        argv[1:1] = log_options(runc_log(work))
    return argv, work


def container_name(_previous: str = "") -> str:
    """A fresh name for the runtime's state of one run (or of its second try)."""
    return f"hpcbox-{uuid.uuid4().hex[:16]}"


def runc_log(work: str) -> str:
    """Where runc's own messages go for the run whose bundle is *work* (removed with it)."""
    return os.path.join(work, "runc.log")
