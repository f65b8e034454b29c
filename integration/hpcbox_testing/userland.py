"""Run a shell script inside another Linux userland (an extracted root filesystem) as the calling
ordinary user, with the host's /dev, /proc and /sys, no root and no setuid helper:

    from hpcbox_testing.userland import run_in_userland
    done = run_in_userland(rootfs, "python3 --version")   # a subprocess.CompletedProcess

How: a user namespace (the caller becomes uid 0 there) with its own mount namespace binds the
host's /dev, /proc and /sys into the rootfs and makes it the root with pivot_root (not chroot: a
chrooted process may not create user namespaces, and the engines inside must); a second user
namespace maps the caller's own uid and gid back, so the script runs with the caller's ids and
no capabilities, as on a machine where that userland is the system. The network is the host's
(loopback registries are reachable).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
DEFAULT_ENV = {"HOME": "/home/user", "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def run_in_userland(root: Path, script: str, env: Optional[Dict[str, str]] = None,
                    timeout: float = 600) -> subprocess.CompletedProcess:
    """``sh -ec script`` in the userland at ``root`` (see the module's docstring)."""
    return subprocess.run([sys.executable, __file__, str(root), script, json.dumps(env or DEFAULT_ENV)],
                          capture_output=True, text=True, timeout=timeout, check=False, env={})


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _enter(root: str, script: str, env: Dict[str, str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare(user, mount)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")

    def mount(source: str, target: str, flags: int) -> None:
        _check(libc.mount(source.encode(), target.encode(), None, flags, None), f"mount {source} on {target}")

    mount("none", "/", MS_REC | MS_PRIVATE)
    mount(root, root, MS_BIND | MS_REC)
    for kernel_dir in ("dev", "proc", "sys"):
        os.makedirs(os.path.join(root, kernel_dir), exist_ok=True)
        mount(f"/{kernel_dir}", os.path.join(root, kernel_dir), MS_BIND | MS_REC)
    os.makedirs(os.path.join(root, ".oldroot"), exist_ok=True)
    os.chdir(root)
    _check(libc.syscall(SYS_PIVOT_ROOT[os.uname().machine], b".", b".oldroot"), "pivot_root")
    _check(libc.umount2(b"/.oldroot", MNT_DETACH), "umount /.oldroot")
    os.rmdir("/.oldroot")
    os.chdir("/")
    _check(libc.unshare(CLONE_NEWUSER), "unshare(user)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} 0 1")
    _write("/proc/self/gid_map", f"{gid} 0 1")
    os.execve("/bin/sh", ["sh", "-ec", script], env)


if __name__ == "__main__":
    _enter(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
