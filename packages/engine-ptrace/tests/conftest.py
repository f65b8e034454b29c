"""Fixtures of the ptrace engine's tests: the shared guest-path core and its reference model.

Both live outside this package in the repository (csrc/guestpath/ and
integration/hpcbox_testing/guestpath_model.py); the sdist carries copies (csrc/guestpath/ and
tests/guestpath_model.py), so these tests also run from an unpacked sdist.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis times each example (200 ms) and the data generation: on a loaded CI machine either may
# take ten times longer than here, which fails a test for no fault of the code. Not timed, then.
settings.register_profile("hpcbox-untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hpcbox-untimed")

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
REPO = PACKAGE.parent.parent


def _first(*candidates: Path):
    return next((c for c in candidates if c.is_file()), None)


def guestpath_sources():
    """Directory holding guestpath.c, or None."""
    found = _first(PACKAGE / "csrc/guestpath/guestpath.c", REPO / "csrc/guestpath/guestpath.c")
    return found.parent if found else None


@pytest.fixture(scope="session")
def guestpath_model():
    """The pure-Python reference model, loaded by path (it is no installed package)."""
    path = _first(REPO / "integration" / "hpcbox_testing" / "guestpath_model.py", HERE / "guestpath_model.py")
    if path is None:
        pytest.skip(
            "guestpath_model.py not found: neither in the repository (integration/hpcbox_testing/) nor "
            "copied beside the tests by the sdist; model comparisons need one of them"
        )
    spec = importlib.util.spec_from_file_location("hpcbox_guestpath_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def guestpath_dir():
    found = guestpath_sources()
    if found is None:
        pytest.skip("csrc/guestpath not found beside the package nor in the repository")
    return found


@pytest.fixture(scope="session")
def helper_checks():
    """The checks of the C helpers shared by the C packages' tests (--version, another machine's ELF),
    loaded by path: integration/hpcbox_testing/helper_checks.py, or the sdist's tests/ copy."""
    for path in (REPO / "integration" / "hpcbox_testing" / "helper_checks.py", HERE / "helper_checks.py"):
        if path.is_file():
            spec = importlib.util.spec_from_file_location("hpcbox_helper_checks", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise RuntimeError("helper_checks.py not found: neither in the repository (integration/hpcbox_testing/) "
                       "nor copied beside the tests by the sdist")


@pytest.fixture(scope="session")
def common_include() -> Path:
    """csrc/common (hpcbox_version.h, the helpers' --version): the sdist's copy or the repository's."""
    found = _first(PACKAGE / "csrc/common/hpcbox_version.h", REPO / "csrc/common/hpcbox_version.h")
    if found is None:
        raise RuntimeError("csrc/common/hpcbox_version.h not found beside the package nor in the repository")
    return found.parent
