"""bench: the wheelhouse a researcher installs from: the size of each wheel (x86_64 and aarch64),
and the time of `python -m venv` + `pip install --no-index --find-links WHEELHOUSE hpcbox` (no
compiler, no network).

    hatch run python bench/install.py [--runs 3] [--aarch64-headers DIR]

Builds the wheelhouse with scripts/build-wheelhouse --deps (this Python's dependencies' wheels come
from the package index once), then times the offline install into a fresh venv each run. On x86_64
it also cross-builds the aarch64 wheels (scripts/build-wheelhouse --target aarch64) for their sizes,
with the arm64 Python headers of DIR (default: $HPCBOX_PYTHON_INCLUDE, else the test input that
scripts/prepare-test-inputs unpacks) and the musl headers beside them (or $HPCBOX_MUSL_INCLUDE);
without them, or without the cross compiler, that column is left out.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parent.parent
ARM64_HEADERS = Path(os.environ.get("HPCBOX_TEST_INPUTS", "/var/cache/hpcbox-test-inputs")) / \
    "arm64-python/usr/include/python3.11"


def aarch64_wheels(out: Path, headers: Path, env: dict) -> dict:
    """{distribution: size} of the cross-built aarch64 wheels; {} where they cannot be built here."""
    if os.uname().machine != "x86_64" or not shutil.which("aarch64-linux-gnu-gcc") \
            or not (headers / "Python.h").is_file():
        print(f"bench: no aarch64 column (needs x86_64, aarch64-linux-gnu-gcc and {headers}/Python.h)")
        return {}
    musl = Path(os.environ.get("HPCBOX_MUSL_INCLUDE") or headers.parent / "aarch64-linux-musl")
    if not (musl / "stdio.h").is_file():
        print(f"bench: no arm64 musl headers in {musl}: the aarch64 preload wheel is measured without musl")
    subprocess.run([str(ROOT / "scripts" / "build-wheelhouse"), "--target", "aarch64", str(out)],
                   env={**env, "HPCBOX_PYTHON_INCLUDE": str(headers), "HPCBOX_MUSL_INCLUDE": str(musl)},
                   check=True, stdout=subprocess.DEVNULL)
    return {w.name.split("-")[0]: w.stat().st_size for w in out.glob("hpcbox*.whl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--aarch64-headers", type=Path,
                        default=Path(os.environ.get("HPCBOX_PYTHON_INCLUDE") or ARM64_HEADERS))
    args = parser.parse_args()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-install-") as tmp:
        wheelhouse, venv = Path(tmp) / "wheelhouse", Path(tmp) / "venv"
        env = {**os.environ, "HPCBOX_BUILD_PYTHON": sys.executable, "HPCBOX_WHEELHOUSE_PYTHONS": version}
        subprocess.run([str(ROOT / "scripts" / "build-wheelhouse"), "--deps", str(wheelhouse)], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        q = shlex.quote
        pip = q(str(venv / "bin" / "pip"))
        timings = harness.compare(
            {"venv + pip install hpcbox": f"{q(sys.executable)} -m venv {q(str(venv))} && "
             f"{pip} install -q --no-index --find-links {q(str(wheelhouse))} hpcbox"},
            prepare=f"rm -rf {q(str(venv))}", runs=args.runs, warmup=0)
        sizes = {w.name: w.stat().st_size for w in sorted(wheelhouse.glob("*.whl"))}
        arm = aarch64_wheels(Path(tmp) / "aarch64", args.aarch64_headers, env)
    ours = [name for name in sizes if name.startswith("hpcbox")]
    machine = os.uname().machine
    rows = [f"| wheel ({machine}) | size |" + (" aarch64 |" if arm else ""),
            "|---|---|" + ("---|" if arm else "")]
    for name in ours:
        other = arm.get(name.split("-")[0])
        rows.append(f"| `{name}` | {sizes[name] / 1000:.0f} kB |"
                    + (f" {other / 1000:.0f} kB |" if other is not None else " - |" if arm else ""))
    deps = sum(size for name, size in sizes.items() if name not in ours)
    rows.append(f"| the nine together | {sum(sizes[name] for name in ours) / 1e6:.2f} MB |"
                + (f" {sum(arm.values()) / 1e6:.2f} MB |" if arm else ""))
    rows.append(f"| their dependencies' {len(sizes) - len(ours)} wheels (CPython {version}) | "
                f"{deps / 1e6:.2f} MB |" + (" - |" if arm else ""))
    result = harness.table(timings, baseline="venv + pip install hpcbox")
    load = os.getloadavg()[0]
    print("\n".join(rows) + "\n\n" + result)
    harness.publish(
        "install",
        "The wheelhouse of `scripts/build-wheelhouse --deps` and an offline install from it into a fresh "
        "venv (`python -m venv` + `pip install --no-index --find-links`), as on a compute node: no "
        "compiler, no network."
        + (" The aarch64 column: the same wheels cross-built with `--target aarch64` (the pure ones are "
           "the same files)." if arm else "")
        + f"\n\nMachine: {harness.machine()}, load average {load:.1f} at the end "
        "(other jobs on the same cores slow pip down).\n\n" + "\n".join(rows) + f"\n\n{result}\n",
    )


if __name__ == "__main__":
    main()
