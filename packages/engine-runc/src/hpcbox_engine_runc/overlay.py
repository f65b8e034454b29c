"""Rootless overlayfs (Linux 5.11+): a container rootfs made of shared read-only image layers and
a private upper directory, mounted by the runner inside the container's mount namespace. Creating
a container then copies nothing; when the kernel or filesystem refuses, the caller copies instead.

    from hpcbox_engine_runc import overlay
    ok, why = overlay.supported(container_dir)
    if ok:
        config["annotations"].update(overlay.prepare([top_layer, ..., base_layer], container_dir))
        config["root"]["path"] = overlay.merged_dir(container_dir)
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from hpcbox_engine_runc._bundle import (
    ANNOTATION_OVERLAY_LOWER,
    ANNOTATION_OVERLAY_UPPER,
    ANNOTATION_OVERLAY_WORK,
)
from hpcbox_engine_runc.errors import BundleError

MIN_KERNEL = (5, 11)


def kernel_version(release: Optional[str] = None) -> Tuple[int, int]:
    parts = (release or platform.release()).split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def merged_dir(container_dir: str) -> str:
    return os.path.join(container_dir, "merged")


def prepare(lower_dirs: Sequence[str], container_dir: str) -> Dict[str, str]:
    """Create upper/, work/ and merged/ under container_dir; return the annotations for the bundle.

    lower_dirs are read-only layer directories, the topmost first (overlayfs order)."""
    if not lower_dirs:
        raise BundleError("overlay: no lower layer directories: give at least one unpacked layer")
    lowers: List[str] = []
    for given in lower_dirs:
        path = os.path.abspath(given)
        if not os.path.isdir(path) or "," in path or ":" in path:
            raise BundleError(
                f"overlay: lower layer {path!r} is unusable: give existing directories without ',' or ':'"
            )
        lowers.append(path)
    dirs = {name: os.path.join(os.path.abspath(container_dir), name) for name in ("upper", "work", "merged")}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    return {
        ANNOTATION_OVERLAY_LOWER: ":".join(lowers),
        ANNOTATION_OVERLAY_UPPER: dirs["upper"],
        ANNOTATION_OVERLAY_WORK: dirs["work"],
    }


def remove(container_dir: str, ignore_errors: bool = False) -> None:
    """Remove a container directory made by prepare(); overlayfs leaves work/work with mode 000."""
    inner = os.path.join(container_dir, "work", "work")
    try:
        if os.path.isdir(inner):
            os.chmod(inner, 0o700)
    except OSError:
        if not ignore_errors:
            raise
    shutil.rmtree(container_dir, ignore_errors=ignore_errors)


def supported(directory: Optional[str] = None, runner: Optional[str] = None) -> Tuple[bool, str]:
    """Probe whether a rootless overlay mount works with upper/work dirs in `directory`."""
    if kernel_version() < MIN_KERNEL:
        return False, (
            f"rootless overlayfs needs Linux {MIN_KERNEL[0]}.{MIN_KERNEL[1]}+, this is {platform.release()}; "
            "the rootfs will be a full copy"
        )
    from hpcbox_engine_runc._engine import runner_path

    runner = runner or str(runner_path())
    base = tempfile.mkdtemp(prefix=".hpcbox-overlay-probe-", dir=directory)
    try:
        lower = os.path.join(base, "lower")
        os.mkdir(lower)
        annotations = prepare([lower], base)
        options = (f"lowerdir={lower},upperdir={annotations[ANNOTATION_OVERLAY_UPPER]},"
                   f"workdir={annotations[ANNOTATION_OVERLAY_WORK]},userxattr")
        done = subprocess.run(
            [runner, "--probe", "--rootfs", merged_dir(base), "--overlay", options],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
        )
    except OSError as error:
        return False, f"rootless overlayfs probe could not run ({error}); the rootfs will be a full copy"
    finally:
        remove(base, ignore_errors=True)
    if done.returncode != 0:
        detail = "; ".join(done.stderr.strip().splitlines()) or f"exit status {done.returncode}"
        return False, f"rootless overlayfs is refused here ({detail}); the rootfs will be a full copy"
    return True, "rootless overlayfs works here (userxattr)"
