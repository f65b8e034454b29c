"""`hpcbox setup --execmode`: udocker's modes mapped onto hpcbox engines and options."""

from __future__ import annotations

import pytest

from hpcbox import engines
from hpcbox.commands import setup
from hpcbox.errors import UsageError


@pytest.mark.parametrize("mode, engine, extra", [
    ("P1", "ptrace", {"annotations": {"org.hpcbox.ptrace.seccomp": "on"}}),
    ("P2", "ptrace", {"annotations": {"org.hpcbox.ptrace.seccomp": "off"}}),
    ("F1", "preload", {"annotations": {"org.hpcbox.preload.mode": "F1"}}),
    ("F2", "preload", {"annotations": {"org.hpcbox.preload.mode": "F2"}}),
    ("F3", "preload", {"annotations": {"org.hpcbox.preload.mode": "F3"}}),
    ("F4", "preload", {"annotations": {"org.hpcbox.preload.mode": "F4"}}),
    ("R1", "runc", {"runtime": "builtin"}),
    ("R2", "runc", {"runtime": "runc"}),
    ("R3", "runc", {"runtime": "crun"}),
    ("S1", "singularity", {}),
])
def test_every_udocker_mode_maps_to_an_engine(mode, engine, extra):
    assert setup.settings_for(mode) == {"engine": engine, **extra}
    assert setup.settings_for(mode.lower()) == setup.settings_for(mode)
    assert engine in engines.KNOWN


def test_settings_are_copies():
    setup.settings_for("P1")["annotations"]["x"] = "y"
    assert "x" not in setup.settings_for("P1")["annotations"]


@pytest.mark.parametrize("mode", ["R4", "", "X", "P"])
def test_unknown_mode(mode):
    with pytest.raises(UsageError, match=r"unknown execution mode.*P1, P2, F1, F2, F3, F4, R1, R2, R3, S1"):
        setup.settings_for(mode)
