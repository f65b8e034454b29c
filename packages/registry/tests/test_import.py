import re

import hpcbox_registry


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", hpcbox_registry.__version__)
