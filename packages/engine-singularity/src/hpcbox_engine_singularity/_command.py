"""Turn a parsed bundle into one `apptainer exec` (or `singularity exec`) of the rootfs sandbox."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from hpcbox_engine_singularity._bundle import Bind, Bundle, resolve_in_root
from hpcbox_engine_singularity._probe import Installation
from hpcbox_engine_singularity.errors import UnavailableError

_LEXICAL = ("/proc", "/sys", "/dev")  # Apptainer fills these itself; never created in the rootfs
_LEXICAL_PREFIXES = tuple(p + "/" for p in _LEXICAL)


@dataclass
class Command:
    """The argv to run, the variables to add to the binary's environment, and notes for the user."""

    argv: List[str]
    env: Dict[str, str]
    notes: List[str] = field(default_factory=list)
    fakeroot: bool = False


def _covers(destination: str, path: str) -> bool:
    return destination in ("/", path) or path.startswith(destination + "/")


def _home_bind(spec: Bundle) -> Optional[Bind]:
    home = spec.env.get("HOME")
    if not home or not home.startswith("/"):
        return None
    covering = [b for b in spec.binds if _covers(b.destination, os.path.normpath(home))]
    return covering[-1] if covering else None  # the last mount made is the one seen


def build_command(spec: Bundle, inst: Installation, *, caller_uid: int, fakeroot_allowed: bool,
                  fakeroot_reason: str = "", workdir: Optional[str] = None) -> Command:
    """The exec command line for `spec` on `inst`; UnavailableError when the bundle needs an option
    this binary lacks (GPU flags, scratch dirs, forced fakeroot). `workdir` is the directory that
    holds the scratch directories (tmpfs mounts of the config), which a writable sandbox needs."""
    name = f"{inst.command_name} {inst.version_string}"
    argv = [inst.path, "exec"]
    notes: List[str] = []
    if spec.userns:
        if not inst.has("userns"):
            raise UnavailableError(f"{name} has no --userns option: drop the annotation "
                                   "org.hpcbox.singularity.userns or load a newer apptainer")
        argv.append("--userns")

    fakeroot = False
    if spec.uid == 0 and caller_uid != 0:
        if spec.fakeroot == "true" and not inst.has("fakeroot"):
            raise UnavailableError(f"{name} has no --fakeroot option: set "
                                   "org.hpcbox.singularity.fakeroot=false or load a newer apptainer")
        wanted = spec.fakeroot == "true" or (spec.fakeroot == "auto" and fakeroot_allowed)
        if inst.has("fakeroot") and wanted:
            fakeroot = True
            argv.append("--fakeroot")
        else:
            if spec.fakeroot == "false":
                why = "fakeroot is turned off by org.hpcbox.singularity.fakeroot=false"
            else:
                why = fakeroot_reason or f"{name} has no --fakeroot option"
            notes.append(f"the container asked for root (uid 0) but {why}; it runs as your uid {caller_uid}")
    elif spec.uid not in (0, caller_uid):
        notes.append(f"the container asked for uid {spec.uid}; {inst.command_name} runs it as your uid "
                     f"{caller_uid}")

    if spec.containall and inst.has("containall"):
        argv.append("--containall")
    elif spec.containall:
        raise UnavailableError(f"{name} has no --containall option: drop org.hpcbox.singularity.containall")
    argv.append("--cleanenv")
    if not spec.readonly:
        if inst.has("writable"):
            argv.append("--writable")
        else:
            notes.append(f"{name} has no --writable option; the rootfs is read-only in the container")

    binds = list(spec.binds)
    home = spec.env.get("HOME")
    home = os.path.normpath(home) if home and home.startswith("/") else None
    home_ok = home is not None and ":" not in home and "," not in home and inst.has("home")
    covering = _home_bind(spec)
    if covering is not None and home_ok and home is not None:
        # a volume covers the container's HOME: let apptainer mount that as the home directory
        source = covering.source if covering.destination == home else \
            os.path.join(covering.source, os.path.relpath(home, covering.destination))
        argv += ["--home", f"{source}:{home}"]
        if covering.destination == home:
            binds.remove(covering)
    elif inst.has("no-home"):
        argv.append("--no-home")
        if home_ok and home is not None:
            argv += ["--home", home]  # with --no-home this only sets $HOME; nothing is mounted
    if spec.no_mount and inst.has("no-mount"):
        argv += ["--no-mount", spec.no_mount]
    argv += [inst.spelling("pwd"), spec.cwd]
    if spec.net == "none":
        if not (inst.has("net") and inst.has("network")):
            raise UnavailableError(f"{name} has no --net/--network options for a container without network: "
                                   "drop org.hpcbox.net=none or use the runc engine")
        argv += ["--net", "--network", "none"]  # a network namespace holding only lo, which is up
    if spec.hostname and inst.has("hostname"):
        if inst.has("uts"):
            argv.append("--uts")
        argv += ["--hostname", spec.hostname]
    if spec.gpu:
        flag = {"nvidia": "nv", "rocm": "rocm"}[spec.gpu]
        if not inst.has(flag):
            raise UnavailableError(f"{name} has no --{flag} option for {spec.gpu} GPUs: load a newer "
                                   "apptainer or drop org.hpcbox.singularity.gpu")
        argv.append(f"--{flag}")
    for bind in binds:
        argv += ["--bind", f"{bind.source}:{bind.destination}" + (":ro" if bind.readonly else "")]
    if spec.scratch and workdir and inst.has("workdir"):
        argv += ["--workdir", workdir]
    for destination in spec.scratch:
        if not inst.has("scratch"):
            raise UnavailableError(f"{name} has no --scratch option for the tmpfs at {destination}: "
                                   "bind a host directory there instead")
        argv += ["--scratch", destination]
    argv += [spec.rootfs, *spec.args]

    env = {inst.env_prefix + key: value for key, value in spec.env.items() if key != "HOME"}
    return Command(argv, env, notes, fakeroot)


# What Apptainer mounts or edits by default. It cannot create missing mount points in a --writable
# sandbox (no underlay there): a missing /dev or /proc is fatal, a missing file gives a warning.
STANDARD_DIRS = ("/proc", "/sys", "/dev", "/tmp", "/var/tmp")
STANDARD_FILES = ("/etc/hosts", "/etc/localtime", "/etc/resolv.conf", "/etc/passwd", "/etc/group")


def prepare_rootfs(spec: Bundle) -> None:
    """Create missing mount points in a writable sandbox: the standard ones, bind destinations,
    scratch directories and the working directory. Failures are left for Apptainer to report."""
    if spec.readonly:
        return
    wanted = [(d, True) for d in STANDARD_DIRS] + [(f, False) for f in STANDARD_FILES]
    if spec.hostname:
        wanted.append(("/etc/hostname", False))
    for bind in spec.binds:
        if bind.destination not in _LEXICAL and not bind.destination.startswith(_LEXICAL_PREFIXES):
            wanted.append((bind.destination, os.path.isdir(bind.source)))
    wanted += [(d, True) for d in spec.scratch]
    if spec.cwd not in _LEXICAL and not spec.cwd.startswith(_LEXICAL_PREFIXES):
        wanted.append((spec.cwd, True))
    for destination, is_dir in wanted:
        if destination == "/":
            continue
        try:
            target = resolve_in_root(spec.rootfs, destination)
            if os.path.lexists(target):
                continue
            if is_dir:
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "a", encoding="utf-8"):
                    pass
        except (OSError, ValueError):
            continue
