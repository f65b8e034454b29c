import re
from importlib.metadata import entry_points

import hpcbox_engine_singularity


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", hpcbox_engine_singularity.__version__)


def test_entry_point_is_registered():
    eps = entry_points()
    group = eps.select(group="hpcbox.engines") if hasattr(eps, "select") else eps.get("hpcbox.engines", [])
    found = {ep.name: ep for ep in group}
    assert "singularity" in found
    loaded = found["singularity"].load()
    assert loaded is hpcbox_engine_singularity.engine
    assert loaded.name == "singularity"
    assert callable(loaded.available) and callable(loaded.run)
