"""Mounts as path bindings, for engines that translate paths instead of mounting (ptrace, preload).

Such an engine cannot mount anything: it shows the guest a host path wherever the config mounts
one. Binds map their destination to their source. The kernel filesystems (/proc, /sys, /dev and
the ones below them) are the host's own, as under PRoot or fakechroot: they are always bound, so a
program sees a working /proc even when the config does not list it. Any other filesystem (a tmpfs
at /tmp, say) needs a mount namespace, and gets an error naming the fix.
"""

from __future__ import annotations

import os

from hpcbox_oci_bundle.bundle import STANDARD_MOUNTS, Bundle, Record, fail, resolve_in_root
from hpcbox_oci_bundle.errors import BundleError

TYPE_CHECKING = False  # typing is for type checkers only (it costs ~2 ms to import)
if TYPE_CHECKING:
    from typing import Dict, List

# Always shown from the host, in this order (a config's own mounts of them change nothing).
HOST_KERNEL_DIRS = ("/proc", "/sys", "/dev")


class Binding(Record):
    """``guest``: the absolute, normalised path the container sees; ``host``: the absolute host path
    shown there; ``readonly``."""

    __slots__ = ("guest", "host", "readonly")

    def __init__(self, guest: str, host: str, readonly: bool):
        self.guest, self.host, self.readonly = guest, host, readonly


def guest_bindings(bundle: Bundle) -> List[Binding]:
    """The bindings that stand for *bundle*'s mounts, in config order after the kernel filesystems;
    a later binding of the same guest path replaces an earlier one (the longest guest prefix is the
    one that applies, which is for the path translator to honour)."""
    chosen: Dict[str, Binding] = {path: Binding(path, path, False) for path in HOST_KERNEL_DIRS}
    for mount in bundle.mounts:
        if mount.is_bind:
            chosen.pop(mount.destination, None)  # keep config order: re-insert at the end
            chosen[mount.destination] = Binding(mount.destination, mount.source, mount.readonly)
        elif mount.destination in STANDARD_MOUNTS:
            continue  # below /proc, /sys or /dev: the host's, already bound
        else:
            raise fail(
                f"the {mount.type} mount at {mount.destination} needs a mount namespace, which this "
                "engine does not use",
                f"bind a host directory there instead (-v DIR:{mount.destination}) or use --engine runc",
            )
    return list(chosen.values())


def place_bindings(rootfs: str, bindings: List[Binding]) -> List[Binding]:
    """*bindings* where mounts would land, in the same order: each guest path resolved in the rootfs
    as mount(2) resolves its target (a symlink there is followed, inside the rootfs; the kernel
    filesystems stay where they are), a later binding of the same resolved path replacing an earlier
    one; and the missing mount points created in the rootfs (an empty directory, or an empty file for
    a file), as a runtime creates them, so that `ls` of a parent shows them. Creation is best effort:
    a rootfs the caller cannot write keeps working for the bound paths themselves."""
    root = os.path.realpath(rootfs)
    placed: Dict[str, Binding] = {}
    for binding in bindings:
        guest = binding.guest
        if guest not in HOST_KERNEL_DIRS:
            guest = _resolved_guest(root, guest)
        _make_mount_point(root, guest, binding.host)
        placed.pop(guest, None)  # mount order: the later one is on top
        placed[guest] = Binding(guest, binding.host, binding.readonly)
    return list(placed.values())


def _resolved_guest(root: str, guest: str) -> str:
    try:
        rel = os.path.relpath(resolve_in_root(root, guest), root)
    except (BundleError, OSError, ValueError):
        return guest  # a symlink loop: the path as written (the walk reports the loop)
    if rel == "." or rel.startswith(".."):
        return guest  # a link to "/": a binding cannot replace the root
    return "/" + rel


def _make_mount_point(root: str, guest: str, host: str) -> None:
    target = os.path.join(root, guest.lstrip("/"))
    if os.path.lexists(target):
        return
    try:
        if os.path.isdir(host):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "a"):
                pass
    except OSError:
        return
