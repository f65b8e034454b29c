"""hpcbox info [--json]: which engines work on this host, why (not), and what ``auto`` picks."""

from __future__ import annotations

import json
import sys
from argparse import Namespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional


def gather(args: Optional[Namespace] = None) -> Dict[str, Any]:
    from hpcbox_oci_bundle import contract

    from hpcbox import engines

    report: Dict[str, Dict[str, Any]] = {}
    for name in engines.names():
        engine = engines.load(name)
        ok, reason = engines.check(engine)
        entry: Dict[str, Any] = {"available": ok, "reason": reason}
        if ok and contract.CAP_DELEGATE_RUNTIME in engines.capabilities(engine):
            runtimes = entry["runtimes"] = {}
            for runtime in ("runc", "crun"):
                r_ok, r_reason = engines.check(engine, runtime)
                runtimes[runtime] = {"available": r_ok, "reason": r_reason}
        report[name] = entry
    statuses = {name: (e["available"], e["reason"]) for name, e in report.items()}
    backstop = landlock({name: engines.load(name) for name in report
                         if callable(getattr(engines.load(name), "landlock", None))}, report)
    return {"engines": report, "auto": engines.auto_choice(statuses), "nvidia": nvidia(),
            "run_as": run_as(args), "landlock": backstop}


_LANDLOCK_MIN_ABI = 2  # before it, Landlock refuses every rename between directories


def landlock_abi() -> tuple[int, str]:
    """The kernel's Landlock ABI version (0 when none) and why there is none."""
    import ctypes
    import errno
    import os

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        abi = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, VERSION): 444 everywhere
    except (OSError, AttributeError) as exc:
        return 0, f"cannot ask the kernel ({exc})"
    if abi >= 1:
        return abi, ""
    code = ctypes.get_errno()
    if code == errno.EOPNOTSUPP:
        return 0, "Landlock is disabled at boot (add landlock to the kernel's lsm= list)"
    return 0, f"the kernel has no Landlock ({os.strerror(code)}; Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)"


def landlock(translating: Dict[str, Any], report: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Whether the engines that translate paths (ptrace, preload: *translating*, name -> engine)
    restrict writes with Landlock here: each engine's ``landlock()`` says whether it would for this
    environment, the kernel whether it can."""
    abi, why = landlock_abi()
    if abi and abi < _LANDLOCK_MIN_ABI:
        why = f"Landlock ABI {abi} is too old (renames between directories would fail; ABI 2 is Linux 5.19)"
    states = {}
    for name, engine in translating.items():
        wanted, not_wanted = engine.landlock()
        if not why and not wanted:
            why = not_wanted
        states[name] = bool(abi >= _LANDLOCK_MIN_ABI and wanted and report[name]["available"])
    return {"abi": abi, "reason": why, "engines": states}


def run_as(args: Optional[Namespace]) -> Dict[str, Any]:
    """Who `run` runs as by default, where that was set, and how to switch."""
    from hpcbox import settings

    value, where = settings.run_as(args)
    other = "root" if value == "me" else "me"
    return {"default": value, "set_in": where,
            "switch": f"--as-{other} for one run; \"run_as\": \"{other}\" in "
                      f"{settings.home(args) / 'config.json'} or HPCBOX_RUN_AS={other} to change the default"}


def nvidia() -> Dict[str, Any]:
    """The host's NVIDIA driver as `run --gpus` would see it (hpcbox.gpu)."""
    from hpcbox import gpu

    try:
        driver = gpu.discover()
    except gpu.GpuError as exc:
        return {"available": False, "reason": str(exc)}
    cuda = gpu.cuda_of_driver(driver.version) if driver.version else None
    return {"available": bool(driver.gpus) and "/dev/nvidiactl" in driver.devices,
            "driver": driver.version, "cuda": f"{cuda[0]}.{cuda[1]}" if cuda else None,
            "gpus": sorted(driver.gpus), "libraries": len(driver.libraries),
            "binaries": sorted(driver.binaries)}


def run(args: Namespace) -> int:
    info = gather(args)
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return 0
    out = []
    for name, entry in info["engines"].items():
        out.append(f"{name:<12} {'yes' if entry['available'] else 'no ':<4} {entry['reason']}")
        for runtime, sub in (entry.get("runtimes") or {}).items():
            mark = "yes" if sub["available"] else "no "
            out.append(f"  --runtime {runtime:<5} {mark:<4} {sub['reason']}")
    auto = info["auto"]
    out.append(f"auto picks: {auto}" if auto else "auto picks: nothing (no engine works here, see why above)")
    nv = info["nvidia"]
    if nv.get("driver") or nv["available"]:
        out.append(f"NVIDIA driver {nv.get('driver') or '(version unknown)'} (CUDA {nv.get('cuda') or '?'}), "
                   f"GPUs {','.join(str(g) for g in nv['gpus']) or 'none'}: run --gpus"
                   f"{'' if nv['available'] else ' needs the /dev/nvidia* device nodes'}")
    else:
        out.append("NVIDIA GPUs: none (no driver found; run --gpus needs one)")
    ll = info["landlock"]
    states = ", ".join(f"{name} {'active' if on else 'off'}" for name, on in ll["engines"].items())
    out.append(f"Landlock backstop: {states}: " + (
        f"ABI {ll['abi']}, writes outside the rootfs and read-write volumes fail" if not ll["reason"]
        else ll["reason"]))
    who = info["run_as"]
    label = "you (your uid/gid, environment, $HOME and $PWD)" if who["default"] == "me" else \
        "the container's root (uid 0, HOME=/root)"
    out.append(f"run as: {label}, set by {who['set_in']}; {who['switch']}")
    sys.stdout.write("ENGINE       OK   WHY\n" + "\n".join(out) + "\n")
    return 0
