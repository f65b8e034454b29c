"""bench: the ptrace engine on the workloads of docs/benchmarks.md, beside PRoot and native chroot of the same
Debian 12 rootfs, in one hyperfine run per workload; plus the tracer's stop counts per workload.

    hatch run python bench/engines_ptrace.py [--runs 5] [--start-runs 20]

Run it as an ordinary user (what the engine is for). Workloads, the native chroot baseline (plain chroot as
root, else `unshare -r` + chroot, the host's /dev, /proc and /sys bound in) and the image come from
bench/run.py. PRoot gets
the same host directories the engine shows (/proc, /dev, /sys). Results: docs/benchmarks.md, section
"ptrace".

Figures:
- start: `/bin/true` end to end through `hpcbox run --engine ptrace`, the engine's own part (the tracer
  started as engine.run() starts it), PRoot and native chroot;
- steady-state overhead: (t(workload) - t(/bin/true)) / (same in native chroot), per tool;
- stops: how often the tracer stopped the program (HPCBOX_PTRACE_STATS), i.e. where the time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import run as run_bench  # noqa: E402  (bench/run.py: workloads, image, native chroot approach)

TARGETS = {"200x fork+exec ls /": 3.0, "find /usr x10": 6.0, run_bench.TAR: 3.0,
           "1M-iteration shell loop": 1.02}
PTRACE = "hpcbox run --engine ptrace"
ENGINE = "engine only (hpcbox-ptrace)"
PROOT = "PRoot (proot -r)"
NATIVE = "native chroot"


def tracer_command(home: Path, cid: str) -> list:
    """The tracer's argv as the engine builds it from the container's config.json (without the program)."""
    from hpcbox_oci_bundle import parse_bundle

    from hpcbox_engine_ptrace import tracer_argv

    bundle = home / "containers" / cid
    argv = tracer_argv(parse_bundle(json.loads((bundle / "config.json").read_text()), str(bundle)))
    return argv[: argv.index("--") + 1]


def stop_counts(tracer: list, command: str, env: dict) -> int:
    proc = subprocess.run([*tracer[:1], "--stats", *tracer[1:], "/bin/sh", "-c", command], env=env,
                          capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    for line in proc.stderr.splitlines():
        if line.startswith("hpcbox-ptrace: ") and " stops, " in line:
            return int(line.split()[1])
    raise RuntimeError(f"no stop count from the tracer: {proc.stderr[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="hyperfine runs per workload (default 5)")
    parser.add_argument("--start-runs", type=int, default=20, help="runs of the start figures (default 20)")
    args = parser.parse_args()
    harness.require("hyperfine", "docker-registry", "unshare", "proot")
    hpcbox = harness.hpcbox_binary()
    proot = shutil.which("proot")
    q = shlex.quote
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-ptrace-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        home, cid, rootfs = run_bench.debian_container(work, hpcbox, engine="ptrace")
        chroot = run_bench.native_chroot(work, rootfs)
        tracer = tracer_command(home, cid)
        env = harness.workload_env()  # every tool runs the workloads with the same environment
        tracer_cmd = " ".join(q(a) for a in tracer)
        proot_cmd = f"{q(proot)} -r {q(str(rootfs))} -b /proc -b /dev -b /sys"

        def tools(command: str) -> dict:
            return {
                NATIVE: f"{chroot} {command}",
                PTRACE: f"{q(hpcbox)} --home {q(str(home))} run --engine ptrace bench {command}",
                ENGINE: f"{tracer_cmd} {command}",
                PROOT: f"{proot_cmd} {command}",
            }

        start = harness.compare(tools("/bin/true"), runs=args.start_runs, warmup=3, env=env)
        results, stops = {}, {}
        for label, command in run_bench.WORKLOADS.items():
            if command == "/bin/true":
                continue
            results[label] = harness.compare(tools(command), runs=args.runs, warmup=1, env=env)
            stops[label] = stop_counts(tracer, shlex.split(command)[2], env)
        stops["/bin/true"] = stop_counts(tracer, "/bin/true", env)

    true_of = {t.label: t.median_s for t in start}
    lines = [f"| workload | {NATIVE} | {PTRACE} | {ENGINE} | {PROOT} | target | stops |",
             "|---|---|---|---|---|---|---|"]
    for label, timings in results.items():
        by = {t.label: t.median_s for t in timings}
        native = by[NATIVE] - true_of[NATIVE]
        cells = [f"{(by[tool] - true_of[tool]) / native:.2f}x ({by[tool] * 1000:.0f} ms)"
                 for tool in (PTRACE, ENGINE, PROOT)]
        lines.append(f"| {label} | {by[NATIVE] * 1000:.0f} ms | {' | '.join(cells)} | ≤ {TARGETS[label]}x "
                     f"| {stops[label]} |")
    summary = (f"`/bin/true`: engine only **{true_of[ENGINE] * 1000:.1f} ms** (target ≤ 5 ms), "
               f"`hpcbox run --engine ptrace` {true_of[PTRACE] * 1000:.1f} ms, PRoot "
               f"{true_of[PROOT] * 1000:.1f} ms, native chroot {true_of[NATIVE] * 1000:.1f} ms; "
               f"{stops['/bin/true']} stops.")
    how = "as root (plain chroot)" if os.geteuid() == 0 else "unprivileged (`unshare -r -m` + chroot)"
    body = (f"Debian 12 test image (`debian12`), one container; native chroot {how} with the host's /dev, "
            "/proc and /sys; "
            "Debian's PRoot as `proot -r ROOTFS -b /proc -b /dev -b /sys`; the ptrace engine as "
            "`hpcbox run --engine ptrace` "
            "and its tracer alone with the same arguments (root emulation on: the config's uid is 0).\n\n"
            f"Machine: {harness.machine()}, as {'root' if os.geteuid() == 0 else 'an ordinary user'}, load "
            f"average {load:.1f} at the start.\n\n"
            f"### start\n\n{summary}\n\n{harness.table(start, baseline=NATIVE)}\n\n"
            "### steady-state overhead\n\n(t(workload) - t(/bin/true)) / (same in native chroot), median of "
            f"{args.runs} runs each, the workload's own median in brackets; stops: syscall stops of the "
            f"tracer for one run of the workload (HPCBOX_PTRACE_STATS=1).\n\n" + "\n".join(lines) + "\n")
    print(body)
    harness.publish("ptrace", body)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"bench: {time.monotonic() - started:.0f} s", file=sys.stderr)
