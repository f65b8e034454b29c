"""Stress: run a signal test again and again under load, and count how often it passes.

    python bench/stress_slurm_signal.py [--runs 50] [--load 2] [--engine runc] [-k EXPR] [TEST ...]

By default it runs ``test_slurm_signal_reaches_the_program_and_its_status_is_the_jobs`` of
``integration/test_hpc_signals.py`` with the ``--engine`` parameter ``--runs`` times in one pytest
session (the Slurm cluster and the container are made once), while ``--load`` processes keep the
CPUs busy, and prints the count of passes and failures; it exits 1 when any run failed. Any other
tests (files or node ids, ``-k`` to select among them; ``--engine`` only filters the default test)
are repeated the same way, e.g. to flush out races in the tests that signal or kill processes:
``python bench/stress_slurm_signal.py --runs 5 integration/test_run_ptrace.py -k kill``. Run it as
the user the tests run as (see scripts/run-tests), from the repository root, in the workspace
environment (``hatch run python bench/stress_slurm_signal.py``). It is not part of the test suite:
it takes minutes (3 to 15 s a run here).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEST = ("integration/test_hpc_signals.py::"
                "test_slurm_signal_reaches_the_program_and_its_status_is_the_jobs")


def _burn(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


class _Repeat:
    """A pytest plugin: every collected test runs *runs* times; outcomes are counted."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.outcomes = {"passed": 0, "failed": 0, "skipped": 0}
        self.failures = []
        self.collected = 0

    def pytest_collection_finish(self, session) -> None:
        self.collected = len(session.items)

    def pytest_generate_tests(self, metafunc) -> None:
        metafunc.fixturenames.append("stress_run")
        metafunc.parametrize("stress_run", range(self.runs), ids=lambda i: f"run{i}")

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[report.outcome] += 1
            if report.outcome == "failed":
                self.failures.append(report.nodeid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--load", type=int, default=2, help="busy processes during the runs (default 2)")
    parser.add_argument("--engine", default="runc")
    parser.add_argument("-k", dest="keyword", help="pytest's -k among the tests given")
    parser.add_argument("tests", nargs="*", help="test files or node ids (default: the Slurm SIGTERM test, "
                        "its parameter chosen by --engine)")
    args = parser.parse_args()
    nodes = args.tests or [DEFAULT_TEST]
    keyword = args.keyword or ("" if args.tests else args.engine)
    import pytest

    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_burn, args=(stop,), daemon=True) for _ in range(args.load)]
    for burner in burners:
        burner.start()
    plugin = _Repeat(args.runs)
    started = time.monotonic()
    os.chdir(ROOT)
    try:
        pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
                     *(["-k", keyword] if keyword else []), *nodes], plugins=[plugin])
    finally:
        stop.set()
        for burner in burners:
            burner.join()
    elapsed = time.monotonic() - started
    o = plugin.outcomes
    what = " ".join(nodes) + (f" -k {keyword}" if keyword else "")
    print(f"stress: {what}: {o['passed']} passed, {o['failed']} failed, {o['skipped']} skipped of "
          f"{plugin.collected} ({args.runs} runs of each test) under a load of {args.load} busy "
          f"processes, {elapsed:.0f} s")
    for nodeid in plugin.failures:
        print(f"stress: failed: {nodeid}")
    return 1 if o["failed"] or o["passed"] < max(plugin.collected, 1) else 0


if __name__ == "__main__":
    sys.exit(main())
