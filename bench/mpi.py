"""bench: MPI ping-pong latency and bandwidth by message size, native and per engine, in one run.

    hatch run python bench/mpi.py [--rounds 3] [--max-bytes 4194304] [--batches 10]

Two ranks on this node started by the host's `mpirun -np 2` (Open MPI 4.1, Debian's openmpi-bin),
with no options at all: natively (the program built with the host's mpicc) and as `hpcbox run
--engine E CONTAINER /app/mpi_pingpong` for runc, ptrace and preload (the program built inside the
Debian 12 + Open MPI 4.1 test container with its own mpicc), plus runc with the old recipe's
`--mca btl self,tcp`, for comparison. The program is integration/hpcbox_testing/mpi_pingpong.c:
per size, the median over BATCHES batches of half a round trip. The machine is shared and noisy, so
the variants take turns in every round and each figure is the best of the rounds.

Needs the prepared test input debian12-openmpi.tar.gz (scripts/prepare-test-inputs) and mpicc on
the host (libopenmpi-dev). Results go to docs/benchmarks.md, section "mpi".
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from hpcbox_testing import mpi as mpi_testing  # noqa: E402
from hpcbox_testing.images import TestImages  # noqa: E402

ENGINES = ("runc", "ptrace", "preload")
TCP = "runc, btl self,tcp"


def hpcbox(home: Path, *args: str) -> List[str]:
    return [sys.executable, "-m", "hpcbox", "--home", str(home), *args]


def prepare(work: Path) -> tuple:
    """A store with the MPI container (the ping-pong built inside) and the natively built ping-pong."""
    tarball = TestImages().input_path(mpi_testing.MPI_TARBALL)
    home = work / "home"
    subprocess.run(hpcbox(home, "import", "--tocontainer", "--name", "mpi", str(tarball), "bench/mpi:1"),
                   check=True, stdout=subprocess.DEVNULL)
    binary = mpi_testing.PINGPONG_IN_CONTAINER
    source = mpi_testing.PINGPONG_SOURCE
    subprocess.run(hpcbox(home, "run", "-v", f"{source.parent}:/src:ro", "mpi", "sh", "-c",
                          f"mkdir -p /app && mpicc -O2 -o {binary} /src/{source.name}"),
                   check=True)
    native = work / "mpi_pingpong"
    subprocess.run(["mpicc", "-O2", "-o", str(native), str(source)], check=True)
    return home, native


def variants(home: Path, native: Path, max_bytes: int, batches: int) -> Dict[str, List[str]]:
    args = [str(max_bytes), str(batches)]
    mpirun = ["mpirun", "-np", "2"]
    program = ["mpi", mpi_testing.PINGPONG_IN_CONTAINER, *args]
    out = {"native": [*mpirun, str(native), *args]}
    for engine in ENGINES:
        out[engine] = [*mpirun, *hpcbox(home, "run", "--engine", engine, *program)]
    out[TCP] = [*mpirun, "--mca", "btl", "self,tcp", *hpcbox(home, "run", "--engine", "runc", *program)]
    return out


def measure(argv: List[str]) -> Dict[int, float]:
    """{size: latency in µs} of one ping-pong run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "HPCBOX_"))}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return {int(f[1]): float(f[3]) for f in (line.split() for line in proc.stdout.splitlines())
            if f and f[0] == "size"}


def size_label(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB" if size >= 1024 else f"{size} B"


def report(best: Dict[str, Dict[int, float]], rounds: int, batches: int) -> str:
    names = list(best)
    sizes = sorted(best["native"])
    base = best["native"]
    lines = ["Half round trip in µs (ratio to native); best of "
             f"{rounds} rounds, each the median of {batches} batches:", "",
             "| size | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for size in sizes:
        cells = [f"{base[size]:.2f}"]
        cells += [f"{best[n][size]:.2f} ({best[n][size] / base[size]:.2f}x)" for n in names[1:]]
        lines.append(f"| {size_label(size)} | " + " | ".join(cells) + " |")
    lines += ["", "Bandwidth in MB/s, size / half round trip (ratio to native):", "",
              "| size | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for size in (s for s in sizes if s >= 65536):
        bw = {n: size / best[n][size] for n in names}  # bytes per µs = MB/s
        cells = [f"{bw['native']:.0f}"] + [f"{bw[n]:.0f} ({bw[n] / bw['native']:.2f}x)" for n in names[1:]]
        lines.append(f"| {size_label(size)} | " + " | ".join(cells) + " |")
    small, large = sizes[0], sizes[-1]
    lines += ["", "Targets: 8-byte latency at most 1.3x native, "
              "large-message bandwidth at least 0.9x native:", ""]
    for name in names[1:]:
        lat = best[name][small] / base[small]
        bw = base[large] / best[name][large]
        verdict = "met" if lat <= 1.3 and bw >= 0.9 else "not met"
        lines.append(f"- {name}: {size_label(small)} latency {lat:.2f}x, "
                     f"{size_label(large)} bandwidth {bw:.2f}x: {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-bytes", type=int, default=4 << 20)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--no-publish", action="store_true", help="print the tables only")
    options = parser.parse_args()
    harness.require("mpirun", "mpicc")
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-mpi-") as tmp:
        home, native = prepare(Path(tmp))
        runs = variants(home, native, options.max_bytes, options.batches)
        best: Dict[str, Dict[int, float]] = {}
        for round_number in range(options.rounds):
            for name, argv in runs.items():
                result = measure(argv)
                print(f"round {round_number + 1} {name}: 8 B {result[8]:.2f} µs, "
                      f"{size_label(max(result))} {result[max(result)]:.0f} µs", flush=True)
                kept = best.setdefault(name, result)
                for size, value in result.items():
                    kept[size] = min(kept[size], value)
        shutil.rmtree(home, ignore_errors=True)
    body = (f"`bench/mpi.py`: {harness.machine()}; Open MPI 4.1 on the host and in the container, "
            f"`mpirun -np 2` with no options (the last column: runc with `--mca btl self,tcp`, the "
            f"recipe needed before MPI mode).\n\n" + report(best, options.rounds, options.batches))
    print(body)
    if not options.no_publish:
        harness.loglog_svg(best, harness.ROOT / "docs" / "img" / "mpi.svg",
                           "MPI ping-pong, mpirun -np 2, no flags: half round trip", "message size (bytes)",
                           "µs")
        harness.publish("mpi", body + "\n\n![MPI latency by message size](img/mpi.svg)")


if __name__ == "__main__":
    main()
