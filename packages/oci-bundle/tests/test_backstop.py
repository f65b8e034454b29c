"""hpcbox_oci_bundle.backstop: when the path-translating engines use their Landlock backstop."""

from __future__ import annotations

import pytest
from hpcbox_oci_bundle.backstop import RANK_VARIABLES, landlock_wanted


def test_an_ordinary_run_wants_it():
    environ = {"PATH": "/usr/bin", "SLURM_JOB_ID": "7", "SLURM_STEP_NUM_TASKS": "1"}
    assert landlock_wanted(environ) == (True, "")


@pytest.mark.parametrize("name", RANK_VARIABLES)
def test_an_mpi_rank_started_outside_goes_without_and_says_why(name):
    wanted, why = landlock_wanted({name: "1"})
    assert not wanted and name in why and "HPCBOX_LANDLOCK=1" in why


def test_a_multi_task_slurm_step_goes_without():
    wanted, why = landlock_wanted({"SLURM_STEP_NUM_TASKS": "4"})
    assert not wanted and "SLURM_STEP_NUM_TASKS=4" in why


@pytest.mark.parametrize("value", ["0", "off", "OFF", "no"])
def test_turned_off(value):
    wanted, why = landlock_wanted({"HPCBOX_LANDLOCK": value})
    assert not wanted and f"HPCBOX_LANDLOCK={value}" in why


def test_forced_on_also_for_a_rank():
    assert landlock_wanted({"HPCBOX_LANDLOCK": "1", "PMIX_RANK": "3"}) == (True, "")


def test_a_malformed_task_count_is_one_task():
    assert landlock_wanted({"SLURM_STEP_NUM_TASKS": "x"}) == (True, "")
