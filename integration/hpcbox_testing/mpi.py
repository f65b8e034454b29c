"""The MPI test image, and which engines the HPC tests run under.

``mpi_layout(test_images)`` -> an OCI layout (tag ``latest``) of Debian 12 minbase with Open MPI 4.1
(openmpi-bin, libopenmpi-dev, gcc), from ``$HPCBOX_TEST_INPUTS/debian12-openmpi.tar.gz`` (made as root
by ``scripts/prepare-test-inputs``), built with the same umoci recipe as the other test images
(:mod:`.images`) and cached beside them. The MPI program (``mpi_program.c`` here) is *not* in the
image: :func:`compile_in_container` copies it into a container and compiles it there with the
container's own ``mpicc``, so the binary links against the container's libmpi, as a user's would.

``ENGINES`` are the engines every HPC test is parametrised over; :func:`engine_status` asks
``hpcbox info --json`` whether one is available here and why not.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, Tuple

from . import images as images_module

MPI_TARBALL = "debian12-openmpi.tar.gz"
PROGRAM_SOURCE = Path(__file__).with_name("mpi_program.c")
PROGRAM_IN_CONTAINER = "/app/mpi_program"
PINGPONG_SOURCE = Path(__file__).with_name("mpi_pingpong.c")
PINGPONG_IN_CONTAINER = "/app/mpi_pingpong"
ENGINES = ("runc", "ptrace", "preload")

def mpi_layout(test_images: images_module.TestImages) -> Path:
    """The cached OCI layout of the MPI image (built from the prepared tarball on first use)."""
    tarball = test_images.input_path(MPI_TARBALL)
    stat = tarball.stat()
    key = hashlib.sha256(
        Path(__file__).read_bytes() + f"{tarball}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    ).hexdigest()[:16]
    cache = test_images.cache_dir
    final = cache / f"debian12-openmpi-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".debian12-openmpi.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / "index.json").exists():
            with tempfile.TemporaryDirectory(dir=cache, prefix=".build-debian12-openmpi-") as tmp:
                work = Path(tmp)
                rootfs_tar = work / "rootfs.tar"
                with gzip.open(tarball, "rb") as source, open(rootfs_tar, "wb") as dest:
                    shutil.copyfileobj(source, dest, 1 << 20)
                layout = work / "layout"
                images_module._umoci_image(layout, images_module.TAG, [rootfs_tar], "amd64")
                shutil.rmtree(final, ignore_errors=True)
                layout.rename(final)
    return final


def compile_in_container(hpcbox: Callable, container: str) -> None:
    """Put mpi_program.c and mpi_pingpong.c into the container and build /app/mpi_program and
    /app/mpi_pingpong with the container's mpicc.

    ``hpcbox(*args)`` runs the CLI on the test store and returns a CompletedProcess."""
    source_dir = PROGRAM_SOURCE.parent
    builds = [f"cp /src/{source.name} /app/ && mpicc -O2 -Wall -Werror -o {binary} /app/{source.name}"
              for source, binary in ((PROGRAM_SOURCE, PROGRAM_IN_CONTAINER),
                                     (PINGPONG_SOURCE, PINGPONG_IN_CONTAINER))]
    script = " && ".join(["mkdir -p /app", *builds])
    proc = hpcbox("run", "-v", f"{source_dir}:/src:ro", container, "sh", "-c", script)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling the MPI program in {container} failed ({proc.returncode}): "
                           f"{proc.stderr.strip()}")


def engine_status(hpcbox: Callable) -> Dict[str, Tuple[bool, str]]:
    """{engine: (available, reason)} from ``hpcbox info --json``."""
    proc = hpcbox("info", "--json")
    if proc.returncode != 0:
        raise RuntimeError(f"hpcbox info --json failed: {proc.stderr.strip()}")
    engines = json.loads(proc.stdout)["engines"]
    return {name: (bool(entry.get("available")), str(entry.get("reason", "")))
            for name, entry in engines.items()}
