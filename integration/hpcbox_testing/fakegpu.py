"""A fake NVIDIA driver tree for GPU tests on machines without a GPU.

``FakeDriver(root, version="535.104.05", cuda="12.2").build()`` lays out, under *root*, what
``hpcbox.gpu.discover`` looks for on a real host (point ``HPCBOX_NVIDIA_ROOT`` at *root*):

- ``usr/lib/<multiarch>/``: ``libcuda.so.<version>`` with the ``libcuda.so.1`` and ``libcuda.so`` links,
  ``libnvidia-ml``, ``libnvidia-ptxjitcompiler``, ``libGLX_nvidia`` (``.so.0``), and
  ``libnvidia-container.so.1``, which is the container toolkit's and must *not* be taken. Each library
  is a small text file naming itself, so a test can ``cat`` it inside a container.
- ``usr/bin/nvidia-smi``: a ``/bin/sh`` script printing nvidia-smi's header with "Driver Version" and
  "CUDA Version" (it runs inside a container too); ``usr/bin/nvidia-debugdump``.
- ``dev/``: ``nvidiactl``, ``nvidia-uvm``, ``nvidia-uvm-tools``, ``nvidia0..N-1`` and
  ``nvidia-caps/nvidia-cap1,2`` as regular files holding their own names (a user cannot make nodes).
- ``lib/firmware/nvidia/<version>/gsp_ga10x.bin``.

``versioned=False`` names the library ``libcuda.so.1`` only, so that the driver version is unknown and
the CUDA version must come from ``nvidia-smi``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

MULTIARCH = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu"}

SMI = """#!/bin/sh
# fake nvidia-smi of hpcbox's GPU tests
cat <<'END'
+-----------------------------------------------------------------------------+
| NVIDIA-SMI {version}    Driver Version: {version}    CUDA Version: {cuda}     |
|-------------------------------+----------------------+----------------------+
END
i=0
while [ $i -lt {count} ]; do
  echo "| $i  Fake GPU {version}  |"
  i=$((i + 1))
done
"""


class FakeDriver:
    def __init__(self, root: Path, version: str = "535.104.05", cuda: str = "12.2", gpus: int = 2,
                 versioned: bool = True):
        self.root = Path(root)
        self.version = version
        self.cuda = cuda
        self.gpus = gpus
        self.versioned = versioned
        self.libdir = self.root / "usr/lib" / MULTIARCH.get(os.uname().machine, "x86_64-linux-gnu")

    def build(self) -> FakeDriver:
        self.libdir.mkdir(parents=True, exist_ok=True)
        if self.versioned:
            self._library("libcuda.so", self.version, ["1", ""])
        else:
            (self.libdir / "libcuda.so.1").write_text("fake libcuda.so.1 (unversioned)\n")
        self._library("libnvidia-ml.so", self.version, ["1"])
        self._library("libnvidia-ptxjitcompiler.so", self.version, ["1"])
        self._library("libGLX_nvidia.so", self.version, ["0"])
        (self.libdir / "libnvidia-container.so.1").write_text("not part of the driver\n")
        bindir = self.root / "usr/bin"
        bindir.mkdir(parents=True, exist_ok=True)
        smi = bindir / "nvidia-smi"
        smi.write_text(SMI.format(version=self.version, cuda=self.cuda, count=self.gpus))
        smi.chmod(0o755)
        dump = bindir / "nvidia-debugdump"
        dump.write_text("#!/bin/sh\necho fake nvidia-debugdump\n")
        dump.chmod(0o755)
        dev = self.root / "dev"
        (dev / "nvidia-caps").mkdir(parents=True, exist_ok=True)
        for name in self.device_names():
            (dev / name).write_text(f"fake {name}\n")
        firmware = self.root / "lib/firmware/nvidia" / self.version
        firmware.mkdir(parents=True, exist_ok=True)
        (firmware / "gsp_ga10x.bin").write_text("fake firmware\n")
        return self

    def device_names(self) -> List[str]:
        names = ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-caps/nvidia-cap1",
                 "nvidia-caps/nvidia-cap2"]
        return names + [f"nvidia{i}" for i in range(self.gpus)]

    def _library(self, stem: str, version: str, links: List[str]) -> None:
        real = self.libdir / f"{stem}.{version}"
        real.write_text(f"fake {real.name}\n")
        for suffix in links:
            link = self.libdir / (f"{stem}.{suffix}" if suffix else stem)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(real.name)

    def library_names(self) -> List[str]:
        """The names hpcbox must bind (symlink names too), without the toolkit's library."""
        return sorted(p.name for p in self.libdir.iterdir() if not p.name.startswith("libnvidia-container"))
