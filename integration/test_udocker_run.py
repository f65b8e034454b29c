"""udocker's `run` options under every engine (``common.RUN_ENGINES``) on the Debian 12 image: binds
whose paths hold colons and spaces, ``--device`` (read-write and read-only), ``--location`` (a tree
outside the store), ``--nometa`` and ``--novol``; and ``-q`` leaving the container's own stderr alone."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
import test_run_common as common
from test_cli_common import ok, one_error

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian


@pytest.fixture(params=common.RUN_ENGINES)
def engine(request):
    return request.param


def test_colon_and_space_paths(run_store, shared_debian, tmp_path, engine):
    args = common.engine_args(run_store, engine)
    odd, ro = tmp_path / "A:Gln2Cys dir", tmp_path / "B:ro"
    odd.mkdir()
    ro.mkdir()
    (odd / "f:1").write_text("colon\n")
    os.chmod(tmp_path, 0o755)
    proc = ok(run_store("run", *args, f"--volume={odd}:/stg/A:Gln2Cys dir", "-v", f"{ro}:/ro:ro",
                        shared_debian, "sh", "-c",
                        'cat "/stg/A:Gln2Cys dir/f:1"; echo w > "/stg/A:Gln2Cys dir/new"; '
                        'if echo x > /ro/x 2>/dev/null; then echo ro-writable; else echo ro-refused; fi'))
    assert proc.stdout.splitlines() == ["colon", "ro-refused"]
    assert (odd / "new").read_text() == "w\n"
    assert not (ro / "x").exists()


def test_device(run_store, shared_debian, engine):
    """The node is there (under another name too, except with preload, which keeps host paths under
    /dev) and works as on the host."""
    args = common.engine_args(run_store, engine)
    dest = "/dev/zero" if engine == "preload" else "/dev/hpcbox-zero"
    proc = ok(run_store("run", *args, f"--device=/dev/zero:{dest}:r", "--device=/dev/null", shared_debian,
                        "sh", "-c", f"head -c 3 {dest} | od -An -tx1; echo x > /dev/null && echo null-ok"))
    assert proc.stdout.split() == ["00", "00", "00", "null-ok"]
    error = one_error(run_store("run", *args, "--device=/dev/no-such-hpcbox", shared_debian, "true"), 2)
    assert "does not exist" in error


def test_location_runs_a_tree_outside_the_store(run_store, shared_debian, tmp_path, engine):
    args = common.engine_args(run_store, engine)
    tar = tmp_path / "rootfs.tar"
    ok(run_store("export", "-o", str(tar), shared_debian))
    tree = tmp_path / "tree"
    tree.mkdir()
    trusted = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
    with tarfile.open(tar) as archive:
        archive.extractall(tree, **trusted)
    (tree / "marker").write_text("in the tree\n")
    before = len(run_store.ids())
    proc = ok(run_store("run", *args, f"--location={tree}", "cat", "/marker"))
    assert proc.stdout == "in the tree\n"
    assert len(run_store.ids()) == before  # no container was made
    assert not any(p.name.startswith("location-") for p in (run_store.home / "tmp").iterdir())


def test_nometa_and_novol(run_store, shared_debian, engine):
    args = common.engine_args(run_store, engine)
    root = ok(run_store("inspect", "-p", shared_debian)).stdout.strip()
    image_hosts = Path(root) / "etc/hosts"
    expected = image_hosts.read_text() if image_hosts.exists() else "none\n"
    host_hosts = Path("/etc/hosts").read_text()
    show = 'echo "${HOME:-unset}"; cat /etc/hosts 2>/dev/null || echo none'
    proc = ok(run_store("run", *args, "--nometa", "--novol=/etc/hosts", shared_debian, "sh", "-c", show))
    home, _, hosts = proc.stdout.partition("\n")
    assert home == "/root"  # from the user's passwd entry: the image's Env is ignored
    assert hosts == expected  # the image's own file: hpcbox's bind of the host's was left out
    proc = ok(run_store("run", *args, shared_debian, "sh", "-c", show))
    assert proc.stdout.partition("\n")[2] == host_hosts  # bound from the host without --novol


def test_quiet_keeps_the_containers_stderr(run_store, shared_debian, engine):
    args = common.engine_args(run_store, engine)
    proc = run_store("-q", "run", *args, shared_debian, "sh", "-c", "echo to-err >&2; exit 3")
    assert (proc.returncode, proc.stderr) == (3, "to-err\n")
