# Copyright 2026 hpcbox developers. SPDX-License-Identifier: Apache-2.0
#
# Spack recipe for one Python distribution of the hpcbox monorepo (packages/cli/ in the
# repository); see packaging/README.md for how the recipes are checked.

from spack_repo.builtin.build_systems.python import PythonPackage

from spack.package import *


class PyHpcboxCli(PythonPackage):
    """The hpcbox command and its image and container store, without engines (the
    hpcbox package adds them): run Docker/OCI containers without root, daemon or
    administrator. Installs bash and zsh completions and a man page under share/."""

    homepage = "https://github.com/hpcbox/hpcbox"
    git = "https://github.com/hpcbox/hpcbox.git"

    license("Apache-2.0")

    version("main", branch="main")
    version("0.2.0", tag="v0.2.0")

    # The monorepo holds eight Python distributions; this one is built from its own folder.
    build_directory = "packages/cli"

    depends_on("python@3.9:", type=("build", "run"))
    depends_on("py-hatchling@1.21:", type="build")
    depends_on("py-hpcbox-registry@0.2", type=("build", "run"))
    depends_on("py-hpcbox-layers@0.2", type=("build", "run"))
    depends_on("py-hpcbox-oci-bundle@0.2", type=("build", "run"))
