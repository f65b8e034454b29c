"""bench: `hpcbox run` start and steady-state overhead (the workloads of docs/benchmarks.md) in the
debian12 test image, beside native chroot and `runc run` of the same rootfs, in one hyperfine run per
workload.

    hatch run python bench/run.py [--runs 5] [--start-runs 30]

Best run as an ordinary user (what hpcbox is for). The native chroot baseline needs root: as root it
is plain `chroot`; otherwise it is `unshare -r chroot` (a user namespace only to be allowed to chroot,
which the results say). Either way the host's /dev, /proc and /sys are bound into the rootfs first (in
a private mount namespace), as every engine gives them: the extracted image has no device nodes
(`>/dev/null` would write a file), and without /proc programs skip work they do in any container.
Results go to docs/benchmarks.md, section "run".

Figures:
- start: `hpcbox run CONTAINER /bin/true` end to end, the engine's own part (engine.run() of the same
  config.json from Python, median of --start-runs), `runc run`, chroot, and the Python interpreter start;
- steady-state overhead: (t(workload) - t(/bin/true)) / (same in native chroot), per tool.
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
from typing import Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from hpcbox_testing.images import TestImages  # noqa: E402
from hpcbox_testing.registry import start_registry  # noqa: E402

TAR = "tar c /usr/share /usr/lib x3, piped to cat"
WORKLOADS = {
    "/bin/true": "/bin/true",
    "200x fork+exec ls /": "sh -c 'i=0; while [ $i -lt 200 ]; do ls / >/dev/null; i=$((i+1)); done'",
    "find /usr x10": "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do find /usr >/dev/null; done'",
    TAR: "sh -c 'for i in 1 2 3; do tar c /usr/share /usr/lib 2>/dev/null | cat >/dev/null; done'",
    "1M-iteration shell loop": "sh -c 'i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done'",
}
TARGETS = {"200x fork+exec ls /": 1.1, "find /usr x10": 1.1, TAR: 1.05, "1M-iteration shell loop": 1.02}


def sbin(name: str) -> str:
    """A tool that may live in an sbin directory, off an ordinary user's PATH."""
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/local/sbin:/usr/sbin:/sbin")
    if not found:
        sys.exit(f"bench: {name} not found; run: sudo scripts/setup-debian --tests")
    return found


def runc_binary() -> str:
    return sbin("runc")


def runc_bundle(runc: str, base: Path, rootfs: Path, command: str) -> Path:
    """A rootless runc bundle of *rootfs* running *command* (no cgroup namespace, no /sys: DESIGN 8)."""
    bundle = base / f"runc-{abs(hash(command))}"
    bundle.mkdir()
    subprocess.run([runc, "spec", "--rootless", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"] = {"path": str(rootfs), "readonly": False}
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/sh", "-c", command]
    spec["process"]["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    spec["mounts"] = [m for m in spec["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "cgroup"]
    if os.geteuid() != 0:
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


# The kernel's file systems every engine gives the container, which the baseline has too: without
# /proc, programs skip work they do in any container (ls reads /proc/filesystems through libselinux),
# and the baseline would credit the engines with that work as their overhead.
KERNEL_FILESYSTEMS = ("dev", "proc", "sys")


def native_chroot(work: Path, rootfs: Path, filesystems: Tuple[str, ...] = KERNEL_FILESYSTEMS,
                  name: str = "native-chroot") -> str:
    """The native baseline as a script: chroot with the host's /dev, /proc and /sys, as the engines
    give them (or the host directories named in filesystems), in a private mount namespace (as an
    ordinary user inside `unshare -r`, a user namespace only to be allowed to chroot)."""
    root = os.geteuid() == 0
    script = work / name
    binds = " && ".join(f'mount --rbind /{d} "$0/{d}"' for d in filesystems)
    script.write_text(f"#!/bin/sh\n# chroot with the host's {', '.join(filesystems)}, in a mount namespace\n"
                      f"exec unshare {'' if root else '-r '}-m /bin/sh -c "
                      f"'{binds} && exec {sbin('chroot')} \"$0\" \"$@\"' "
                      f"{shlex.quote(str(rootfs))} \"$@\"\n")
    script.chmod(0o755)
    return str(script)


def debian_container(work: Path, hpcbox: str, engine: str = "runc") -> Tuple[Path, str, Path]:
    """Pull the Debian 12 test image through a loopback registry into ``work/home`` (also tagged
    ``bench/debian:12`` there), create the container ``bench`` and run it once under *engine*; return
    (home, container id, rootfs)."""
    home = work / "home"
    with start_registry("http", work / "registry", TestImages()) as registry:
        pushed = registry.push("debian12", "bench/debian", "12")
        subprocess.run([hpcbox, "--home", str(home), "pull", "-q", pushed.ref], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run([hpcbox, "--home", str(home), "tag", pushed.ref, "bench/debian:12"], check=True)
    cid = subprocess.run([hpcbox, "--home", str(home), "create", "--name", "bench", pushed.ref],
                         check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([hpcbox, "--home", str(home), "run", "--engine", engine, "bench", "/bin/true"], check=True)
    return home, cid, home / "containers" / cid / "rootfs"


def engine_part(home: Path, container: str, runs: int, engine: str = "runc") -> float:
    """Median seconds of *engine*'s engine.run() of the config.json that `hpcbox run` wrote (Python
    side included)."""
    code = f"""
import json, statistics, subprocess, time
from hpcbox_engine_{engine} import engine
config = json.load(open({str(home / 'containers' / container / 'config.json')!r}))
config["process"]["args"] = ["/bin/true"]
times = []
for _ in range({runs}):
    t = time.perf_counter()
    engine.run(config, bundle_dir={str(home / 'containers' / container)!r}, stdout=subprocess.DEVNULL)
    times.append(time.perf_counter() - t)
print(statistics.median(times))
"""
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="hyperfine runs per workload (default 5)")
    parser.add_argument("--start-runs", type=int, default=30, help="runs of the start figures (default 30)")
    args = parser.parse_args()
    harness.require("hyperfine", "docker-registry", "unshare")
    runc = runc_binary()
    hpcbox = harness.hpcbox_binary()
    root = os.geteuid() == 0
    q = shlex.quote
    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-run-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        home, cid, rootfs = debian_container(work, hpcbox)
        chroot = native_chroot(work, rootfs)
        state = work / "runc-state"

        timed_env = harness.workload_env()  # every tool runs the workloads with the same environment

        def tools(command: str) -> dict:
            bundle = runc_bundle(runc, work, rootfs, command)
            return {
                "hpcbox run": f"{q(hpcbox)} --home {q(str(home))} run bench {command}",
                "native chroot": f"{chroot} {command}",
                "runc run": f"{q(runc)} --root {q(str(state))} run --bundle {q(str(bundle))} bench-runc",
            }

        # start
        start_cmds = tools("/bin/true")
        start_cmds["hpcbox run --rm --overlay IMAGE"] = (f"{q(hpcbox)} --home {q(str(home))} run --rm "
                                                         f"--overlay bench/debian:12 /bin/true")
        start_cmds["python -c pass (interpreter start)"] = f"{q(sys.executable)} -c pass"
        start = harness.interleaved(start_cmds, runs=args.start_runs, warmup=3, env=timed_env)
        harness.distribution_svg(start, harness.ROOT / "docs" / "img" / "start.svg",
                                 f"/bin/true start, {args.start_runs} runs each (box: 25-75%, red: median, "
                                 "line: 5-95%)")
        engine_s = engine_part(home, cid, args.start_runs)

        results = {}
        for label, command in WORKLOADS.items():
            if command == "/bin/true":
                continue
            results[label] = harness.interleaved(tools(command), runs=args.runs, warmup=1, env=timed_env)

    true_of = {t.label: t.median_s for t in start}
    lines = ["| workload | native chroot | hpcbox run (runc engine) | runc run | target (userns) |",
             "|---|---|---|---|---|"]
    for label, timings in results.items():
        by = {t.label: t.median_s for t in timings}
        native = by["native chroot"] - true_of["native chroot"]
        ratios = {tool: f"{(by[tool] - true_of[tool]) / native:.2f}x ({by[tool] * 1000:.0f} ms)"
                  for tool in ("hpcbox run", "runc run")}
        lines.append(f"| {label} | {by['native chroot'] * 1000:.0f} ms | {ratios['hpcbox run']} | "
                     f"{ratios['runc run']} | ≤ {TARGETS[label]}x |")
    overhead = "\n".join(lines)
    start_table = harness.table(start, baseline="runc run")
    hp = true_of["hpcbox run"]
    summary = (f"`hpcbox run CONTAINER /bin/true`: **{hp * 1000:.1f} ms** median end to end (target ≤ 25 ms "
               f"and ≤ `runc run`: {hp / true_of['runc run']:.2f}x); `hpcbox run --rm --overlay IMAGE` "
               f"(a new "
               f"overlay container each time, removed after): "
               f"{true_of['hpcbox run --rm --overlay IMAGE'] * 1000:.1f} ms; the engine's own part "
               f"(`engine.run()` from Python, median of {args.start_runs}): **{engine_s * 1000:.1f} ms** "
               "(target ≤ 5 ms).")
    how = ("native chroot as root (`unshare -m`, the host's /dev, /proc and /sys bound in)" if root else
           "native chroot via `unshare -r -m` + `chroot` (the bench ran unprivileged: a user namespace only "
           "to be allowed to chroot; the host's /dev, /proc and /sys bound in)")
    body = (f"Debian 12 test image (`debian12`), one container, {how}; `runc run` of the same rootfs with a "
            f"rootless spec; hpcbox with its default runc engine (builtin runner).\n\n"
            f"Machine: {harness.machine()}, as {'root' if root else 'an ordinary user'}, load average "
            f"{load:.1f} at the start; the tools run in turn, one run of each per round, so that load from "
            f"elsewhere hits every column alike (25-75%: the middle half of the runs; CPU: user + system "
            f"time of the run's processes, the steadier figure on a shared machine).\n\n"
            f"### start\n\n{summary}\n\n{start_table}\n\n![start-up distribution](img/start.svg)\n\n"
            f"### steady-state overhead\n\n(t(workload) - t(/bin/true)) / (same in native chroot), "
            f"median of {args.runs} runs each; the workload's own median in brackets.\n\n{overhead}\n")
    print(body)
    harness.publish("run", body)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"bench: {time.monotonic() - started:.0f} s", file=sys.stderr)
