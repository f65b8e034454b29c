"""hpcbox info [--json]: which engines work on this host, why (not), and what ``auto`` picks."""

from __future__ import annotations

import json
import sys


def gather() -> dict:
    from hpcbox import engines

    report = {}
    for name in engines.names():
        engine = engines.load(name)
        ok, reason = engines.check(engine)
        entry = {"available": ok, "reason": reason}
        if name == "runc" and ok:
            entry["runtimes"] = {}
            for runtime in ("runc", "crun"):
                r_ok, r_reason = engines.check(engine, runtime)
                entry["runtimes"][runtime] = {"available": r_ok, "reason": r_reason}
        report[name] = entry
    statuses = {name: (e["available"], e["reason"]) for name, e in report.items()}
    return {"engines": report, "auto": engines.auto_choice(statuses)}


def run(args) -> int:
    info = gather()
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
    sys.stdout.write("ENGINE       OK   WHY\n" + "\n".join(out) + "\n")
    return 0
