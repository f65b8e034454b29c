"""The packages of the workspace import together and agree on their sibling version ranges."""

import importlib
from importlib import metadata

import pytest
from packaging.requirements import Requirement

DISTRIBUTIONS = {
    "hpcbox-registry": "hpcbox_registry",
    "hpcbox-layers": "hpcbox_layers",
    "hpcbox-oci-bundle": "hpcbox_oci_bundle",
    "hpcbox-engine-ptrace": "hpcbox_engine_ptrace",
    "hpcbox-engine-preload": "hpcbox_engine_preload",
    "hpcbox-engine-runc": "hpcbox_engine_runc",
    "hpcbox-engine-singularity": "hpcbox_engine_singularity",
    "hpcbox": "hpcbox",
}


@pytest.mark.parametrize("dist, module", sorted(DISTRIBUTIONS.items()))
def test_installed_version_matches_about(dist, module):
    assert importlib.import_module(module).__version__ == metadata.version(dist)


@pytest.mark.parametrize("dist", sorted(DISTRIBUTIONS))
def test_sibling_requirements_accept_the_workspace_versions(dist):
    for requirement in metadata.requires(dist) or []:
        req = Requirement(requirement)
        if req.name in DISTRIBUTIONS:
            assert req.specifier.contains(metadata.version(req.name)), str(req)
