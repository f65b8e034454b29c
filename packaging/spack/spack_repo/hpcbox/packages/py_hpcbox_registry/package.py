# Copyright 2026 hpcbox developers. SPDX-License-Identifier: Apache-2.0
#
# Spack recipe for one Python distribution of the hpcbox monorepo (packages/registry/ in the
# repository); see packaging/README.md for how the recipes are checked.

from spack_repo.builtin.build_systems.python import PythonPackage

from spack.package import *


class PyHpcboxRegistry(PythonPackage):
    """Docker Registry v2 / OCI distribution client of hpcbox: image references,
    authentication, manifests and verified, resumable blob downloads."""

    homepage = "https://github.com/hpcbox/hpcbox"
    git = "https://github.com/hpcbox/hpcbox.git"

    license("Apache-2.0")

    version("main", branch="main")
    version("0.2.0", tag="v0.2.0")

    # The monorepo holds eight Python distributions; this one is built from its own folder.
    build_directory = "packages/registry"

    depends_on("python@3.9:", type=("build", "run"))
    depends_on("py-hatchling@1.21:", type="build")
    depends_on("py-requests@2.28:", type=("build", "run"))
    depends_on("py-hpcbox-oci-bundle@0.2", type=("build", "run"))
