"""hpcbox setup [--execmode=MODE] CONTAINER: choose how a container runs, with udocker's mode names.

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

from hpcbox import settings
from hpcbox.errors import UsageError

ANNOTATION_SECCOMP = "org.hpcbox.ptrace.seccomp"
ANNOTATION_PRELOAD_MODE = "org.hpcbox.preload.mode"

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


def settings_for(mode: str) -> dict:
    """The container settings for a udocker execution mode (case-insensitive)."""
    key = mode.strip().upper()
    if key not in EXECMODES:
        raise UsageError(f"unknown execution mode {mode!r}",
                         f"use --execmode with one of {', '.join(EXECMODES)}")
    return json.loads(json.dumps(EXECMODES[key]))


def run(args) -> int:
    from hpcbox import engines
    from hpcbox.containers import ContainerStore

    container = ContainerStore(settings.store(args)).get(args.container)
    if not args.execmode:
        current = container.settings
        mode = container.execmode or "auto"
        engine = current.get("engine") or "auto"
        runtime = current.get("runtime")
        sys.stdout.write(f"{container.short_id} execmode: {mode} (engine {engine}"
                         f"{', runtime ' + runtime if runtime else ''})\n")
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
