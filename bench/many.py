"""bench: many short tasks, as workflow engines and parameter sweeps start them: N sequential runs of
`sh -c true` and the same N started 64 at a time, in runs per second, for `hpcbox run --rm IMAGE`
(a new container each time, copy and overlay), `hpcbox run CONTAINER`, `runc run` and native chroot
of the same rootfs, one tool after the other in one run.

    hatch run python bench/many.py [--runs 1000] [--parallel 64] [--rounds 5]

Run as an ordinary user after `sudo scripts/setup-debian --tests`. The image is the `busybox` test
image (one small layer: what a "small container" costs, not its image). Results go to
docs/benchmarks.md, section "many tasks".
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from hpcbox_testing.images import TestImages  # noqa: E402
from hpcbox_testing.registry import start_registry  # noqa: E402
from run import native_chroot, runc_binary, runc_bundle  # noqa: E402


def _rate(command: str, runs: int, parallel: int) -> float:
    """Runs per second of *command* (with {i} the run's number) run *runs* times, *parallel* at once."""
    script = f"i=$1; {command}"
    argv = ["xargs", "-P", str(parallel), "-n", "1", "sh", "-c", script, "sh"]
    started = time.perf_counter()
    subprocess.run(argv, input="".join(f"{i}\n" for i in range(runs)), text=True, check=True,
                   stdout=subprocess.DEVNULL)
    return runs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per tool and mode (default 1000)")
    parser.add_argument("--parallel", type=int, default=64, help="runs at once in the parallel mode (64)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the runs are split into (default 5)")
    args = parser.parse_args()
    harness.require("docker-registry", "unshare", "xargs")
    hpcbox, runc = harness.hpcbox_binary(), runc_binary()
    q = shlex.quote
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-many-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        home = work / "home"
        with start_registry("http", work / "registry", TestImages()) as registry:
            ref = registry.push("busybox", "bench/busybox", "1").ref
            subprocess.run([hpcbox, "--home", str(home), "pull", "-q", ref], check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run([hpcbox, "--home", str(home), "create", "--name", "box", ref], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([hpcbox, "--home", str(home), "run", "box", "/bin/sh", "-c", "true"], check=True)
        rootfs = next((home / "containers").glob("*/rootfs"))
        h = f"{q(hpcbox)} --home {q(str(home))}"
        tools = {
            "native chroot": f"{native_chroot(work, rootfs)} /bin/sh -c true",
            "runc run": f"{q(runc)} --root {q(str(work / 'runc-state'))} run --bundle "
                        f"{q(str(runc_bundle(runc, work, rootfs, 'true')))} many-$i",
            "hpcbox run CONTAINER": f"{h} run box /bin/sh -c true",
            "hpcbox run --rm --overlay IMAGE": f"{h} run --rm --overlay {q(ref)} /bin/sh -c true",
            "hpcbox run --rm IMAGE (copy)": f"{h} run --rm {q(ref)} /bin/sh -c true",
        }
        # the tools take turns, a share of the runs each per round: a change of load on the shared
        # machine then hits every tool alike; the spread is over the rounds
        rates: dict = {label: ([], []) for label in tools}
        share = max(1, args.runs // args.rounds)
        for _ in range(args.rounds):
            for label, command in tools.items():
                rates[label][0].append(_rate(command, share, 1))
                rates[label][1].append(_rate(command, share, args.parallel))
        for label, (sequential, parallel) in rates.items():
            print(f"{label}: {statistics.median(sequential):.1f} runs/s sequential, "
                  f"{statistics.median(parallel):.1f} runs/s {args.parallel} at once", file=sys.stderr)
        left = len(list((home / "containers").glob("*/")))
    native = [statistics.median(r) for r in rates["native chroot"]]

    def cell(values: list, base: float) -> str:
        middle = statistics.median(values)
        return f"{middle:.1f} ({min(values):.1f}-{max(values):.1f}) | {middle / base:.2f}x"

    lines = ["| tool | sequential runs/s (rounds' range) | ratio to native | "
             f"{args.parallel} at once, runs/s (rounds' range) | ratio to native |", "|---|---|---|---|---|"]
    for label, (sequential, parallel) in rates.items():
        lines.append(f"| {label} | {cell(sequential, native[0])} | {cell(parallel, native[1])} |")
    table = "\n".join(lines)
    body = (f"{share * args.rounds} runs of `sh -c true` (busybox has no /bin/true) per tool, one after the "
            f"other and then {args.parallel} at once "
            f"(`xargs -P {args.parallel}`), in the `busybox` test image; `runc run` with a new container id "
            f"per run. The tools take turns: {args.rounds} rounds of {share} runs each, the median round's "
            f"rate given with the range over the rounds. Containers left in the store at the end: {left} "
            f"(the `box` container only: every `--rm` removed its own).\n\nMachine: {harness.machine()}, "
            f"load average {load:.1f} at the start.\n\n{table}\n")
    print(body)
    harness.publish("many tasks", body)


if __name__ == "__main__":
    main()
