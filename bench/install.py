"""bench: the wheelhouse a researcher installs from: the size of each wheel, and the time of
`python -m venv` + `pip install --no-index --find-links WHEELHOUSE hpcbox` (no compiler, no network).

    hatch run python bench/install.py [--runs 3]

Builds the wheelhouse with scripts/build-wheelhouse --deps (this Python's dependencies' wheels come
from the package index once), then times the offline install into a fresh venv each run.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
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
    ours = [name for name in sizes if name.startswith("hpcbox")]
    rows = ["| wheel | size |", "|---|---|"]
    rows += [f"| `{name}` | {sizes[name] / 1000:.0f} kB |" for name in ours]
    deps = sum(size for name, size in sizes.items() if name not in ours)
    rows.append(f"| the nine together | {sum(sizes[name] for name in ours) / 1e6:.2f} MB |")
    rows.append(f"| their dependencies' {len(sizes) - len(ours)} wheels (CPython {version}) | "
                f"{deps / 1e6:.2f} MB |")
    result = harness.table(timings, baseline="venv + pip install hpcbox")
    load = os.getloadavg()[0]
    print("\n".join(rows) + "\n\n" + result)
    harness.publish(
        "install",
        "The wheelhouse of `scripts/build-wheelhouse --deps` and an offline install from it into a fresh "
        "venv (`python -m venv` + `pip install --no-index --find-links`), as on a compute node: no "
        f"compiler, no network.\n\nMachine: {harness.machine()}, load average {load:.1f} at the end "
        "(other jobs on the same cores slow pip down).\n\n" + "\n".join(rows) + f"\n\n{result}\n",
    )


if __name__ == "__main__":
    main()
