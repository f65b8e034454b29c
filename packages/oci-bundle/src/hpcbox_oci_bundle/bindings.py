"""Mounts as path bindings, for engines that translate paths instead of mounting (ptrace, preload).

Such an engine cannot mount anything: it shows the guest a host path wherever the config mounts
one. Binds map their destination to their source. The kernel filesystems (/proc, /sys, /dev and
the ones below them) are the host's own, as under PRoot or fakechroot: they are always bound, so a
program sees a working /proc even when the config does not list it. Any other filesystem (a tmpfs
at /tmp, say) needs a mount namespace, and gets an error naming the fix.
"""

from __future__ import annotations

from collections import namedtuple

from hpcbox_oci_bundle.bundle import STANDARD_MOUNTS, Bundle, fail

TYPE_CHECKING = False  # typing is for type checkers only (it costs ~2 ms to import)
if TYPE_CHECKING:
    from typing import Dict, List

# Always shown from the host, in this order (a config's own mounts of them change nothing).
HOST_KERNEL_DIRS = ("/proc", "/sys", "/dev")


class Binding(namedtuple("Binding", "guest host readonly")):
    """``guest``: the absolute, normalised path the container sees; ``host``: the absolute host path
    shown there; ``readonly``."""

    __slots__ = ()


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
