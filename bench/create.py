"""bench: `hpcbox create` of the debian12 test image against `tar -xzf` of the same layer blob,
`umoci unpack --rootless` of the same OCI layout, and udocker 1.3.17 `create`, in one hyperfine run.
Run as an ordinary user (udocker refuses root) after `sudo scripts/setup-debian --tests`:

    hatch run python bench/create.py [--runs 5] [--no-udocker]

The image is pulled into the hpcbox store once (from a loopback registry), so only the create is
timed; before every run (hyperfine --prepare) every tool's previous output is deleted, so each run
extracts the whole image. udocker is installed from PyPI into a venv under the work directory and
loads the image offline from an `hpcbox save` docker-archive. Results go to docs/benchmarks.md,
section "create".
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from hpcbox_testing.images import TestImages, blob_path, top_descriptor  # noqa: E402
from hpcbox_testing.registry import start_registry  # noqa: E402

UDOCKER_VERSION = "1.3.17"


def _gzip_layer_archive(archive: Path, layer: Path, out: Path) -> None:
    """The docker-archive *archive* with its one layer.tar replaced by the gzip blob *layer* (what
    udocker keeps after a pull), so that udocker starts from the same bytes as the other tools."""
    with tarfile.open(archive) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for info in src.getmembers():
            if info.name.endswith("/layer.tar"):
                info.size = layer.stat().st_size
                with open(layer, "rb") as data:
                    dst.addfile(info, data)
            else:
                dst.addfile(info, src.extractfile(info) if info.isfile() else None)


def _udocker(work: Path, archives: Dict[str, Path]) -> Tuple[Dict[str, str], str, str]:
    """({label: command to time}, prepare fragment, note for the doc)."""
    if os.geteuid() == 0:
        return {}, "", "udocker was not timed: it refuses to run as root (run this benchmark as a user)."
    venv = work / "udocker-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin/pip"), "install", "-q", f"udocker=={UDOCKER_VERSION}"],
                         capture_output=True, text=True, check=False)
    if pip.returncode != 0:
        return {}, "", f"udocker was not timed: `pip install udocker=={UDOCKER_VERSION}` failed."
    udocker = str(venv / "bin/udocker")
    q = shlex.quote
    commands, prepares = {}, []
    for i, (label, archive) in enumerate(archives.items()):
        home = work / f"udocker-home-{i}"
        env = dict(os.environ, UDOCKER_DIR=str(home))
        loaded = subprocess.run([udocker, "load", "-i", str(archive)], env=env, capture_output=True,
                                text=True, check=False)
        if loaded.returncode != 0:
            detail = loaded.stderr.strip()[-200:]
            return {}, "", f"udocker was not timed: `udocker load` failed offline: {detail}"
        probe = subprocess.run([udocker, "create", "bench/debian12:1"], env=env, capture_output=True,
                               text=True, check=False)
        if probe.returncode != 0:
            return {}, "", f"udocker was not timed: `udocker create` failed: {probe.stderr.strip()[-200:]}"
        commands[label] = f"UDOCKER_DIR={q(str(home))} {q(udocker)} create bench/debian12:1"
        containers = q(str(home / "containers"))
        prepares.append(f"chmod -R u+rwx {containers} 2>/dev/null; rm -rf {containers}")
    note = (f"udocker {UDOCKER_VERSION} (PyPI, in a venv) runs offline: it loads the image with "
            "`udocker load` from an `hpcbox save` docker-archive, once as is (uncompressed layer, as "
            "`docker save` writes it) and once with the same gzip blob as the other tools (as udocker keeps "
            "layers after a pull). Its `create` also tries to fetch its udockertools tarball on every call, "
            "which fails at once offline.")
    return commands, "; ".join(prepares), note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-udocker", action="store_true", help="leave udocker out")
    parser.add_argument("--workdir", metavar="DIR",
                        help="where stores and outputs go (default: $TMPDIR); its filesystem dominates the "
                             "times: e.g. /dev/shm (tmpfs) vs a disk")
    args = parser.parse_args()
    harness.require("docker-registry", "skopeo", "umoci", "tar")

    images = TestImages()
    layout = images.layout("debian12")
    manifest = json.loads(blob_path(layout, top_descriptor(layout)["digest"]).read_bytes())
    assert len(manifest["layers"]) == 1, "the debian12 test image has one layer"
    layer = blob_path(layout, manifest["layers"][0]["digest"])
    hpcbox = harness.hpcbox_binary()
    q = shlex.quote
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-create-", dir=args.workdir) as tmp:
        work = Path(tmp)
        store = work / "hpcbox-home"
        with start_registry("http", work / "registry", images) as registry:
            pushed = registry.push("debian12", "bench/debian12", "1")
            subprocess.run([hpcbox, "--home", str(store), "pull", "-q", pushed.ref], check=True,
                           stdout=subprocess.DEVNULL)
        archive = work / "debian12-docker-archive.tar"
        subprocess.run([hpcbox, "--home", str(store), "tag", pushed.ref, "bench/debian12:1"], check=True)
        subprocess.run([hpcbox, "--home", str(store), "save", "-o", str(archive), "bench/debian12:1"],
                       check=True)
        tar_dir, bundle = work / "tar-out", work / "umoci-bundle"
        commands: Dict[str, str] = {
            "hpcbox create": f"{q(hpcbox)} --home {q(str(store))} create -q {q(pushed.ref)}",
            # as a user, GNU tar cannot mknod the image's /dev nodes and exits 2: that is accepted
            "tar -xzf": f"tar -xzf {q(str(layer))} -C {q(str(tar_dir))} 2>/dev/null || test $? -eq 2",
            "umoci unpack --rootless":
                f"umoci unpack --rootless --image {q(str(layout))}:latest {q(str(bundle))}",
        }
        prepare = (f"chmod -R u+rwx {q(str(tar_dir))} {q(str(bundle))} {q(str(store / 'containers'))} "
                   f"2>/dev/null; rm -rf {q(str(tar_dir))} {q(str(bundle))} {q(str(store / 'containers'))}; "
                   f"mkdir -p {q(str(tar_dir))}")
        note = "udocker was left out (--no-udocker)."
        if not args.no_udocker:
            gz_archive = work / "debian12-docker-archive-gzip.tar"
            _gzip_layer_archive(archive, layer, gz_archive)
            more, extra, note = _udocker(work, {"udocker create (gzip layer)": gz_archive,
                                                "udocker create (uncompressed layer)": archive})
            if more:
                commands.update(more)
                prepare += f"; {extra}"
        timings = harness.compare(commands, prepare=prepare, runs=args.runs)
        subprocess.run(["chmod", "-R", "u+rwx", str(work)], check=False)
        fs = subprocess.run(["df", "--output=fstype", str(work)], capture_output=True, text=True,
                            check=False).stdout.split()[-1:] or ["?"]
    size = layer.stat().st_size
    result = harness.table(timings, baseline="tar -xzf")
    print(result)
    print(note)
    harness.publish(
        "create",
        f"`hpcbox create` of the `debian12` test image (one gzip layer of {size / 1e6:.0f} MB, already in "
        f"the "
        f"store) vs `tar -xzf` of the same blob, `umoci unpack --rootless` of the same OCI layout and "
        f"udocker's `create`; every output deleted before each run. Target: under 0.5 s "
        f"(GNU tar took 1.0 s and udocker 2.5 s when the target was set).\n\n{note}\n\n"
        f"Machine: {harness.machine()}; user {'root' if os.geteuid() == 0 else 'unprivileged'}; "
        f"outputs on {fs[0]} (the filesystem dominates: on this VM's ext4 disk every tool is ~5x slower)."
        f"\n\n{result}\n",
    )


if __name__ == "__main__":
    main()
