"""Engine start: engine.run() of /bin/true in a busybox bundle, median of N runs, plus the
command lines to compare the C runner alone with `runc run` under hyperfine.

    python bench/bench_start.py [--runs 20] [--hyperfine]

Run as an ordinary user (as root, runc and the runner do not run rootless).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hpcbox_engine_runc import _delegate, engine, parse_bundle, runner_argv


def make_bundle(base: Path) -> Path:
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for sub in ("proc", "dev", "sys", "tmp"):
        (rootfs / sub).mkdir()
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", rootfs / "bin" / "busybox")
    (rootfs / "bin" / "true").symlink_to("busybox")
    config = {"ociVersion": "1.0.2", "process": {"args": ["/bin/true"], "env": ["PATH=/bin"], "cwd": "/"},
              "root": {"path": "rootfs"}, "hostname": "bench"}
    (base / "config.json").write_text(json.dumps(config))
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hyperfine", action="store_true", help="also run hyperfine: runner vs runc run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-") as tmp:
        bundle = make_bundle(Path(tmp))
        for _ in range(3):
            engine.run(bundle)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            code = engine.run(bundle)
            times.append(time.perf_counter() - start)
            assert code == 0
        print(f"engine.run(/bin/true) median of {args.runs}: {statistics.median(times) * 1000:.2f} ms "
              f"(min {min(times) * 1000:.2f}, max {max(times) * 1000:.2f})")
        spec = parse_bundle(bundle)
        runner = shlex.join(runner_argv(spec))
        commands = [f"env -i PATH=/bin {runner}"]
        runc = shutil.which("runc", path="/usr/sbin:/usr/bin")
        if runc:
            work = Path(tmp) / "runc-bundle"
            work.mkdir()
            (work / "config.json").write_text(json.dumps(_delegate.rootless_config(spec, terminal=False)))
            root = Path(tmp) / "runc-state"
            commands.append(f"{runc} --root {root} run --bundle {work} bench-$RANDOM$RANDOM")
        for command in commands:
            print("command:", command)
        if args.hyperfine and shutil.which("hyperfine"):
            subprocess.run(["hyperfine", "--shell=bash", "--warmup", "5", "--runs", "50",
                            *commands], check=True, env={**os.environ})


if __name__ == "__main__":
    main()
