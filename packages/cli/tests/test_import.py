import re

import hpcbox


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", hpcbox.__version__)
