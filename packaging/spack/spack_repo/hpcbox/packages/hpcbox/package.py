# Copyright 2026 hpcbox developers. SPDX-License-Identifier: Apache-2.0
#
# The meta package: what `spack install hpcbox` gives, the hpcbox command with the engines
# chosen by the variants (all of them by default, like `pip install hpcbox`).
# See packaging/README.md.

from spack_repo.builtin.build_systems.bundle import BundlePackage

from spack.package import *


class Hpcbox(BundlePackage):
    """Run Docker/OCI containers on HPC clusters, grids and shared servers without root,
    daemon or administrator, under the user's own id and the batch system's limits."""

    homepage = "https://github.com/hpcbox/hpcbox"

    license("Apache-2.0")

    version("main")
    version("0.2.0")

    variant("runc", default=True, description="Engine: rootless user namespaces (fastest)")
    variant("ptrace", default=True, description="Engine: ptrace path translation, any program")
    variant(
        "preload", default=True, description="Engine: LD_PRELOAD path translation, dynamic programs"
    )
    variant("singularity", default=True, description="Engine: the host's Apptainer/Singularity")
    conflicts(
        "~runc~ptrace~preload~singularity",
        msg="hpcbox needs at least one engine to run containers; enable one of the variants",
    )

    for ver in ("main", "0.2.0"):
        with when(f"@{ver}"):
            depends_on(f"py-hpcbox-cli@{ver}", type="run")
            for engine in ("runc", "ptrace", "preload", "singularity"):
                depends_on(f"py-hpcbox-engine-{engine}@{ver}", type="run", when=f"+{engine}")
