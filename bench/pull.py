"""bench: `hpcbox pull` against `skopeo copy docker://… oci:…` of the same image from the same
loopback registry, in one hyperfine run. Run as an ordinary user after `sudo scripts/setup-debian --tests`:

    hatch run python bench/pull.py [--image debian12] [--runs 10]

Both tools start from an empty destination on every run (hyperfine --prepare), so each run
downloads and verifies every blob. Results go to docs/benchmarks.md, section "pull".
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from hpcbox_testing.images import TestImages  # noqa: E402
from hpcbox_testing.registry import start_registry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="debian12", help="test image to pull (default: debian12)")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    harness.require("skopeo", "docker-registry")
    load = os.getloadavg()[0]

    images = TestImages()
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-pull-") as tmp:
        work = Path(tmp)
        with start_registry("http", work / "registry", images) as registry:
            pushed = registry.push(args.image, "bench/image", "1")
            store, oci = work / "hpcbox-home", work / "skopeo-oci"
            hpcbox = harness.hpcbox_binary()
            q = shlex.quote
            timings = harness.interleaved(
                {
                    "hpcbox pull": f"{q(hpcbox)} --home {q(str(store))} pull -q {q(pushed.ref)}",
                    "skopeo copy": f"skopeo copy -q --src-tls-verify=false docker://{q(pushed.ref)} "
                    f"oci:{q(str(oci))}:{q(pushed.ref)}",
                },
                prepare=f"rm -rf {q(str(store))} {q(str(oci))}",
                runs=args.runs,
                shell=True,
            )
    size = sum(p.stat().st_size for p in (images.layout(args.image) / "blobs").rglob("*") if p.is_file())
    result = harness.table(timings, baseline="skopeo copy")
    print(result)
    harness.publish(
        "pull",
        f"`hpcbox pull` vs `skopeo copy docker://… oci:…` of the `{args.image}` test image "
        f"({size / 1e6:.0f} MB of blobs) from a loopback `docker-registry` (plain HTTP), empty destination "
        f"each run, the two tools in turn. Target: ≤ 0.8x skopeo.\n\nMachine: {harness.machine()}, load "
        f"average {load:.1f} at the start.\n\n{result}\n",
    )


if __name__ == "__main__":
    main()
