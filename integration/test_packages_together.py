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
    "hpcbox-cli": "hpcbox",
}
ENGINES = ("hpcbox-engine-runc", "hpcbox-engine-ptrace", "hpcbox-engine-preload", "hpcbox-engine-singularity")


@pytest.mark.parametrize("dist, module", sorted(DISTRIBUTIONS.items()))
def test_installed_version_matches_about(dist, module):
    assert importlib.import_module(module).__version__ == metadata.version(dist)


@pytest.mark.parametrize("dist", sorted(DISTRIBUTIONS))
def test_sibling_requirements_accept_the_workspace_versions(dist):
    for requirement in metadata.requires(dist) or []:
        req = Requirement(requirement)
        if req.name in DISTRIBUTIONS:
            assert req.specifier.contains(metadata.version(req.name)), str(req)


def test_the_complete_install_requires_the_cli_with_every_engine():
    """`pip install hpcbox` (packages/hpcbox) brings every engine through hpcbox-cli[all]."""
    assert metadata.version("hpcbox") == metadata.version("hpcbox-cli")
    (requirement,) = [Requirement(r) for r in metadata.requires("hpcbox")]
    assert requirement.name == "hpcbox-cli" and requirement.extras == {"all"}
    assert requirement.specifier.contains(metadata.version("hpcbox-cli"))


def test_the_cli_requires_no_engine_unless_asked():
    """A packager may leave any engine out of hpcbox-cli without `pip check` complaining."""
    plain, by_extra = set(), {}
    for text in metadata.requires("hpcbox-cli"):
        req = Requirement(text)
        extra = next((e for e in ("runc", "ptrace", "preload", "singularity", "all")
                      if req.marker and req.marker.evaluate({"extra": e})), None)
        if req.marker is None:
            plain.add(req.name)
        else:
            by_extra.setdefault(extra, set()).add(req.name)
    assert plain == {"hpcbox-registry", "hpcbox-layers", "hpcbox-oci-bundle"}  # (the engine contract)
    assert by_extra["all"] == set(ENGINES)
    for engine in ENGINES:
        assert by_extra[engine.rsplit("-", 1)[1]] == {engine}
