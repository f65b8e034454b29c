"""hpcbox setup [--execmode=MODE] [--nvidia|--no-nvidia] CONTAINER: choose how a container runs, with
udocker's mode names; ``--nvidia`` copies the host's NVIDIA driver in (see :mod:`hpcbox.gpu`).

The choice is kept in the container's settings (container.json) and used by every later `hpcbox run`
of that container; ``--engine``/``--runtime`` on the run command line still win. Without an option,
the current mode is shown. The mapping (documented in docs/udocker-mapping.md):

==== ===================================== ===============================================================
mode udocker                               hpcbox
==== ===================================== ===============================================================
P1   PRoot with seccomp acceleration       ptrace engine, seccomp filter on
P2   PRoot, every syscall traced           ptrace engine, seccomp filter off
F1   Fakechroot, loader as argument        preload engine, container loader run explicitly
F2   F1 + modified loader                  preload engine, mode F2
F3   F2 + ELF headers patched              preload engine, mode F3
F4   F3 + new executables patched on exec  preload engine, mode F4
R1   runc/crun rootless                    runc engine, builtin runner (no binary needed)
R2   runc + PRoot inside                   runc engine delegating to the installed runc
R3   runc + PRoot without seccomp          runc engine delegating to the installed crun
S1   Singularity/Apptainer                 singularity engine
==== ===================================== ===============================================================
"""

from __future__ import annotations

import json
import sys
from argparse import Namespace
from typing import Any, Dict

from hpcbox_oci_bundle import contract

from hpcbox import settings
from hpcbox.errors import UsageError

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox.containers import Container

ANNOTATION_SECCOMP = contract.ANNOTATION_PTRACE_SECCOMP
ANNOTATION_PRELOAD_MODE = contract.ANNOTATION_PRELOAD_MODE

EXECMODES = {
    "P1": {"engine": "ptrace", "annotations": {ANNOTATION_SECCOMP: "on"}},
    "P2": {"engine": "ptrace", "annotations": {ANNOTATION_SECCOMP: "off"}},
    "F1": {"engine": "preload", "annotations": {ANNOTATION_PRELOAD_MODE: "F1"}},
    "F2": {"engine": "preload", "annotations": {ANNOTATION_PRELOAD_MODE: "F2"}},
    "F3": {"engine": "preload", "annotations": {ANNOTATION_PRELOAD_MODE: "F3"}},
    "F4": {"engine": "preload", "annotations": {ANNOTATION_PRELOAD_MODE: "F4"}},
    "R1": {"engine": "runc", "runtime": "builtin"},
    "R2": {"engine": "runc", "runtime": "runc"},
    "R3": {"engine": "runc", "runtime": "crun"},
    "S1": {"engine": "singularity"},
}


def settings_for(mode: str) -> Dict[str, Any]:
    """The container settings for a udocker execution mode (case-insensitive)."""
    key = mode.strip().upper()
    if key not in EXECMODES:
        raise UsageError(f"unknown execution mode {mode!r}",
                         f"use --execmode with one of {', '.join(EXECMODES)}")
    copied: Dict[str, Any] = json.loads(json.dumps(EXECMODES[key]))
    return copied


def nvidia(container: Container, remove: bool) -> None:
    """``--nvidia``: copy the host driver into the container (replacing an earlier copy) and record it;
    ``--no-nvidia``: remove the recorded copy. An overlay container gets the files in its upper dir."""
    from hpcbox import gpu

    root = str(container.upper if container.storage == "overlay" else container.rootfs)
    old = container.nvidia or {}
    if remove:
        count = gpu.remove_copies(root, old.get("files") or [])
        container.update(nvidia=None)
        sys.stdout.write(f"{container.short_id} nvidia: removed {count} files\n")
        return
    driver = gpu.discover()
    with container.in_use():
        gpu.remove_copies(root, old.get("files") or [])
        plan = gpu.copy_plan(driver)
        # recorded before the copy: an interrupted one is still undone by --no-nvidia, redone by --nvidia
        container.update(nvidia={"driver": None, "files": [guest for guest, _, _ in plan]})
        files = gpu.copy_into(root, plan)
        container.update(nvidia={"driver": driver.version, "files": files})
    sys.stdout.write(f"{container.short_id} nvidia: driver {driver.version or '(version unknown)'}, "
                     f"{len(files)} files in {gpu.LIB_DIR} and {gpu.BIN_DIR}\n")


def maintain(container: Container, purge: bool, fixperm: bool) -> None:
    """udocker's ``--purge`` (remove what running wrote beside the rootfs: config.json, the generated
    etc/ files, private layers of interrupted overlay runs; the next run writes them again) and
    ``--fixperm`` (owner read/write on every file, read/write/search on every directory of the rootfs)."""
    import os

    from hpcbox.containers import ContainerInUseError, remove_tree

    if container.is_in_use():
        raise ContainerInUseError(f"container {container.short_id} is running",
                                  "run setup --purge/--fixperm when no run uses it")
    removed = 0
    if purge:
        for entry in container.dir.iterdir():
            if entry.name in ("config.json", "etc") or entry.name.startswith(".run-"):
                if entry.is_dir() and not entry.is_symlink():
                    remove_tree(entry)
                else:
                    entry.unlink()
                removed += 1
        sys.stdout.write(f"{container.short_id} purge: {removed} entries removed\n")
    if fixperm:
        root = str(container.upper if container.storage == "overlay" else container.rootfs)
        changed = 0
        for top, dirs, files in os.walk(root):
            for name, bits in [(d, 0o700) for d in dirs] + [(f, 0o600) for f in files]:
                path = os.path.join(top, name)
                st = os.lstat(path)
                if (st.st_mode & 0o170000) in (0o040000, 0o100000) and st.st_mode & bits != bits:
                    os.chmod(path, (st.st_mode & 0o7777) | bits)
                    changed += 1
        sys.stdout.write(f"{container.short_id} fixperm: {changed} entries changed\n")


def run(args: Namespace) -> int:
    from hpcbox import engines
    from hpcbox.containers import ContainerStore

    container = ContainerStore(settings.store(args)).get(args.container)
    if getattr(args, "purge", False) or getattr(args, "fixperm", False):
        maintain(container, purge=getattr(args, "purge", False), fixperm=getattr(args, "fixperm", False))
        if not (args.execmode or getattr(args, "nvidia", False) or getattr(args, "no_nvidia", False)):
            return 0
    if getattr(args, "nvidia", False) or getattr(args, "no_nvidia", False):
        nvidia(container, remove=bool(getattr(args, "no_nvidia", False)))
        if not args.execmode:
            return 0
    if not args.execmode:
        current = container.settings
        mode = container.execmode or "auto"
        engine = current.get("engine") or "auto"
        runtime = current.get("runtime")
        sys.stdout.write(f"{container.short_id} execmode: {mode} (engine {engine}"
                         f"{', runtime ' + runtime if runtime else ''})\n")
        copied = container.nvidia
        if copied:
            sys.stdout.write(f"{container.short_id} nvidia: driver {copied.get('driver') or '?'}, "
                             f"{len(copied.get('files') or [])} files\n")
        return 0
    chosen = settings_for(args.execmode)
    mode = args.execmode.strip().upper()
    merged = {k: v for k, v in container.settings.items() if k not in ("engine", "runtime", "annotations")}
    merged.update(chosen)
    container.update(execmode=mode, settings=merged)
    ok, reason = engines.check(engines.load(chosen["engine"]), chosen.get("runtime"))
    if not ok:
        sys.stderr.write(f"hpcbox: warning: engine {chosen['engine']} is not available here: {reason}\n")
    sys.stdout.write(f"{container.short_id} execmode: {mode} (engine {chosen['engine']}"
                     f"{', runtime ' + chosen['runtime'] if chosen.get('runtime') else ''})\n")
    return 0
