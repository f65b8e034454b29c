"""bench: the preload engine (the workloads of docs/benchmarks.md) under `hpcbox run --engine preload`, beside
Debian's fakechroot (`fakechroot chroot ROOTFS`) and native chroot of the same Debian 12 rootfs, timed in
turn (one run of each per round) per workload.

    hatch run python bench/engines_preload.py [--runs 5] [--start-runs 30]

Best run as an ordinary user (what the preload engine is for). The native chroot baseline needs root: as
root it is plain `chroot`, otherwise `unshare -r chroot` (a user namespace only to be allowed to chroot),
with the host's /dev, /proc and /sys bound in, as in bench/run.py. Results go to docs/benchmarks.md,
section "preload".

Figures:
- start: `hpcbox run --engine preload CONTAINER /bin/true` end to end; the engine's own part (engine.run()
  of the same config.json from Python, median of --start-runs); the library alone (the launcher started
  with the engine's environment, no Python); fakechroot and chroot;
- steady-state overhead: (t(workload) - t(/bin/true)) / (same in native chroot), per tool.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from run import TAR, WORKLOADS, debian_container, engine_part, native_chroot, sbin  # noqa: E402  (the same workloads as the run benchmark)

TARGETS = {"200x fork+exec ls /": 1.2, "find /usr x10": 1.3, TAR: 1.15, "1M-iteration shell loop": 1.02}
TOOLS = ("hpcbox run --engine preload", "preload library (launcher, no CLI)", "fakechroot chroot")
# The baseline before 2026-12-04 (no /proc, /sys): shown beside, so that a table says how much of
# the engines' ratios the host's kernel file systems account for.
DEV_ONLY = "chroot with /dev only"


def engine_config(home: Path, container: str) -> dict:
    config = json.loads((home / "containers" / container / "config.json").read_text())
    config["process"]["args"] = ["/bin/true"]
    return config


def launcher_script(work: Path, home: Path, container: str) -> Path:
    """A shell script that starts the engine's launcher with the environment engine.run() would give it."""
    from hpcbox_engine_preload import engine
    from hpcbox_engine_preload._engine import preload_environment

    spec = engine.parse(engine_config(home, container), str(home / "containers" / container))
    env = preload_environment(spec)
    script = work / "preload-launch"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    script.write_text(f"#!/bin/sh\n{exports}exec {shlex.quote(engine.command(spec)[0])} / \"$@\"\n")
    script.chmod(0o755)
    return script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per workload (default 5)")
    parser.add_argument("--start-runs", type=int, default=30, help="runs of the start figures (default 30)")
    args = parser.parse_args()
    harness.require("docker-registry", "unshare", "fakechroot")
    chroot_bin = sbin("chroot")
    hpcbox = harness.hpcbox_binary()
    fakechroot = shutil.which("fakechroot")
    root = os.geteuid() == 0
    q = shlex.quote
    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-preload-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        home, cid, rootfs = debian_container(work, hpcbox, engine="preload")
        launch = launcher_script(work, home, cid)
        native = native_chroot(work, rootfs)
        dev_only = native_chroot(work, rootfs, ("dev",), "native-chroot-dev")

        timed_env = harness.workload_env()  # every tool runs the workloads with the same environment

        def tools(command: str) -> dict:
            return {
                TOOLS[0]: f"{q(hpcbox)} --home {q(str(home))} run --engine preload bench {command}",
                TOOLS[1]: f"{q(str(launch))} {command}",
                TOOLS[2]: f"{q(fakechroot)} {q(chroot_bin)} {q(str(rootfs))} {command}",
                "native chroot": f"{q(native)} {command}",
                DEV_ONLY: f"{q(dev_only)} {command}",
            }

        start_cmds = tools("/bin/true")
        start = harness.interleaved(start_cmds, runs=args.start_runs, warmup=3, env=timed_env)
        engine_s = engine_part(home, cid, args.start_runs, engine="preload")
        results = {}
        for label, command in WORKLOADS.items():
            if command != "/bin/true":
                results[label] = harness.interleaved(tools(command), runs=args.runs, warmup=1, env=timed_env)

    true_of = {t.label: t.median_s for t in start}
    lines = ["| workload | native chroot | " + " | ".join(TOOLS) + f" | target (preload) | {DEV_ONLY} |",
             "|---|---|---|---|---|---|---|"]
    for label, timings in results.items():
        by = {t.label: t.median_s for t in timings}
        base = by["native chroot"] - true_of["native chroot"]
        cells = [f"{(by[tool] - true_of[tool]) / base:.2f}x ({by[tool] * 1000:.0f} ms)"
                 for tool in (*TOOLS, DEV_ONLY)]
        lines.append(f"| {label} | {by['native chroot'] * 1000:.0f} ms | {' | '.join(cells[:-1])} | "
                     f"≤ {TARGETS[label]}x | {cells[-1]} |")
    start_table = harness.table(start, baseline="native chroot")
    summary = (f"`hpcbox run --engine preload CONTAINER /bin/true`: **{true_of[TOOLS[0]] * 1000:.1f} ms** "
               f"median end to end; the engine's own part (`engine.run()` from Python, median of "
               f"{args.start_runs}): **{engine_s * 1000:.1f} ms** (target ≤ 5 ms); the library alone "
               f"(launcher + exec through the container's loader): **{true_of[TOOLS[1]] * 1000:.1f} ms**; "
               f"fakechroot: {true_of[TOOLS[2]] * 1000:.1f} ms.")
    how = ("native chroot as root (`unshare -m`, the host's /dev, /proc and /sys bound in)" if root else
           "native chroot via `unshare -r -m` + `chroot` (unprivileged: a user namespace only to be allowed "
           "to chroot; the host's /dev, /proc and /sys bound in)")
    how += (f"; the last column, \"{DEV_ONLY}\", is the same chroot without /proc and /sys (the baseline "
            "before 2026-12-04), as a ratio to the native chroot like the others")
    body = (f"Debian 12 test image (`debian12`), one container, {how}; Debian's fakechroot "
            f"(`fakechroot chroot ROOTFS`) of the same rootfs; hpcbox with `--engine preload`.\n\n"
            f"Machine: {harness.machine()}, as {'root' if root else 'an ordinary user'}, load average "
            f"{load:.1f} at the start; the tools run in turn, one run of each per round, so that load from "
            f"elsewhere hits every column alike.\n\n"
            f"### start\n\n{summary}\n\n{start_table}\n\n"
            f"### steady-state overhead\n\n(t(workload) - t(/bin/true)) / (same in native chroot), "
            f"median of {args.runs} runs each; the workload's own median in brackets.\n\n"
            + "\n".join(lines) + "\n")
    print(body)
    harness.publish("preload", body)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"bench: {time.monotonic() - started:.0f} s", file=sys.stderr)
