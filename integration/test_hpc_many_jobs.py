"""Many batch jobs on one store: 64 concurrent `hpcbox run` of one container and 32 concurrent
`hpcbox create` from one image, all as the calling user. Every job succeeds with its own result, and
the store stays consistent: `hpcbox verify`, the ps/images counts, no temp files or stale locks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from test_cli_common import assert_store_valid, hpcbox, hpcbox_env, ok

RUNS = 64
CREATES = 32
ID_RE = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
def store(tmp_path, registry_http) -> Path:
    """A store of each test's own (a pull from loopback, about a second): the counts a test checks
    do not depend on what an earlier test left, or on whether it failed half-way."""
    home = tmp_path / "home"
    pushed = registry_http.push("busybox", "hpcbox/many-busybox", "1")
    ok(hpcbox(home, "pull", "-q", pushed.ref))
    ok(hpcbox(home, "tag", pushed.ref, "busybox"))
    return home


def start_all(home: Path, argv_list: List[List[str]]) -> List[subprocess.CompletedProcess]:
    """Start every command at once, then collect them (no thread pool: all run concurrently)."""
    procs = [subprocess.Popen([sys.executable, "-m", "hpcbox", "--home", str(home), *argv],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=hpcbox_env())
             for argv in argv_list]
    done = []
    for argv, proc in zip(argv_list, procs):
        out, err = proc.communicate(timeout=900)
        done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    return done


def assert_consistent(home: Path, containers: int) -> None:
    ps = json.loads(ok(hpcbox(home, "ps", "--json")).stdout)
    assert len(ps) == containers
    assert len(json.loads(ok(hpcbox(home, "images", "--json")).stdout)) == 1
    ok(hpcbox(home, "verify", "busybox"))
    assert_store_valid(home)
    assert list((home / "tmp").iterdir()) == []
    assert sorted(p.name for p in (home / "containers").iterdir()) == sorted(c["id"] for c in ps)
    locks = sorted(p.name for p in (home / "locks").iterdir())
    assert all(not name.startswith(("create-", "blob-")) for name in locks), locks
    for c in ps:
        directory = home / "containers" / c["id"]
        leftovers = [p.name for p in directory.rglob("*.tmp-*") if "rootfs" not in p.parts]
        assert leftovers == [], leftovers
        assert json.loads((directory / "container.json").read_text())["id"] == c["id"]


def test_64_concurrent_runs_of_one_container(store):
    cid = ok(hpcbox(store, "create", "--name", "many", "busybox")).stdout.strip()
    before = (store / "containers" / cid / "container.json").read_bytes()
    # each job has its own environment and command, so each writes its own config.json
    results = start_all(store, [["run", "-e", f"JOB={i}", "-w", "/tmp", "many", "sh", "-c",
                                 f'echo "$JOB $(id -u)" > job-$JOB; cat job-$JOB; echo arg-{i}']
                                for i in range(RUNS)])
    failed = [(r.args, r.returncode, r.stderr) for r in results if r.returncode != 0]
    assert failed == []
    for i, result in enumerate(results):
        assert result.stdout == f"{i} 0\narg-{i}\n", (i, result.stdout, result.stderr)
    rootfs = store / "containers" / cid / "rootfs"
    assert sorted((rootfs / "tmp").glob("job-*")) == sorted(rootfs / "tmp" / f"job-{i}" for i in range(RUNS))
    assert (store / "containers" / cid / "container.json").read_bytes() == before
    config = json.loads((store / "containers" / cid / "config.json").read_text())
    assert config["process"]["args"][0] == "sh"  # one of the jobs' complete configs, never a torn one
    assert not any(p.name.startswith("config.json.tmp") for p in (store / "containers" / cid).iterdir())
    assert_consistent(store, 1)
    ok(hpcbox(store, "rm", "many"))


def test_32_concurrent_creates_from_one_image(store):
    results = start_all(store, [["create", "--name", f"job{i}", "busybox"] for i in range(CREATES)])
    failed = [(r.args, r.returncode, r.stderr) for r in results if r.returncode != 0]
    assert failed == []
    ids = [r.stdout.strip() for r in results]
    assert all(ID_RE.match(i) for i in ids) and len(set(ids)) == CREATES
    ps = json.loads(ok(hpcbox(store, "ps", "--json")).stdout)
    assert sorted(n for c in ps for n in c["names"]) == sorted(f"job{i}" for i in range(CREATES))
    assert_consistent(store, CREATES)
    # every container is complete: it runs
    results = start_all(store, [["run", f"job{i}", "sh", "-c", "echo ok"] for i in range(0, CREATES, 8)])
    assert [(r.returncode, r.stdout) for r in results] == [(0, "ok\n")] * 4
    # 8 jobs racing for one name: exactly one wins, the others fail cleanly
    results = start_all(store, [["create", "--name", "contested", "busybox"] for _ in range(8)])
    assert sorted(r.returncode for r in results) == [0] + [1] * 7
    assert all("contested" in r.stderr for r in results if r.returncode)
    assert_consistent(store, CREATES + 1)
    ok(hpcbox(store, "prune", "--containers"))
    assert_consistent(store, 0)


def test_concurrent_runs_of_one_overlay_container(store, tmp_path):
    from hpcbox.containers import overlay

    works, why = overlay.supported(tmp_path)
    if not works:
        pytest.skip(why)
    cid = ok(hpcbox(store, "create", "--overlay", "--name", "ovl", "busybox")).stdout.strip()
    results = start_all(store, [["run", "ovl", "sh", "-c", f"echo {i} > /tmp/o{i}; cat /tmp/o{i}"]
                                for i in range(16)])
    assert [(r.returncode, r.stdout) for r in results] == [(0, f"{i}\n") for i in range(16)], \
        [r.stderr for r in results if r.returncode]
    # one run at a time writes the container's upper layer; the others had private, discarded layers
    kept = sorted(p.name for p in (store / "containers" / cid / "upper" / "tmp").glob("o*"))
    private = [r for r in results if "private layer" in r.stderr]
    assert len(kept) >= 1 and len(kept) + len(private) == 16
    assert [p.name for p in (store / "containers" / cid).iterdir() if p.name.startswith(".run-")] == []
    ok(hpcbox(store, "rm", "ovl"))
    assert_consistent(store, 0)


def test_an_array_job_pulls_creates_runs_and_removes_at_once(registry_http, tmp_path):
    """16 jobs start `hpcbox run --rm IMAGE` on an empty store: one download per blob is shared,
    each job gets its own container, and nothing is left but the image."""
    home = tmp_path / "home"
    pushed = registry_http.push("busybox", "hpcbox/array-busybox", "1")
    results = start_all(home, [["run", "--rm", "-q", "-e", f"TASK={i}", pushed.ref, "sh", "-c", "echo $TASK"]
                               for i in range(16)])
    assert [(r.returncode, r.stdout) for r in results] == [(0, f"{i}\n") for i in range(16)], \
        [r.stderr for r in results if r.returncode]
    assert json.loads(ok(hpcbox(home, "ps", "--json")).stdout) == []
    assert len(json.loads(ok(hpcbox(home, "images", "--json")).stdout)) == 1
    ok(hpcbox(home, "verify", pushed.ref))
    assert_store_valid(home)
    assert list((home / "tmp").iterdir()) == []
    assert sorted(p.name for p in (home / "containers").iterdir()) == []
