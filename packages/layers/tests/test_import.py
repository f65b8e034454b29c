import re

import hpcbox_layers


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", hpcbox_layers.__version__)
