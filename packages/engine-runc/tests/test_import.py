import re

import hpcbox_engine_runc


def test_version_is_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", hpcbox_engine_runc.__version__)
