import re

import hpcbox_engine_preload


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", hpcbox_engine_preload.__version__)
