"""A site-wide, read-only image store (HPCBOX_IMAGES): populated once by "the admin" (here the same
user, then made read-only with chmod -R a-w), read by users whose containers live in their own
writable store. Pulls go to the user's store; rmi/prune never touch the site store; clear errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from test_cli_common import assert_store_valid, hpcbox, hpcbox_env, ok, one_error


def chmod_tree(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~0o222)


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size, stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def site(tmp_path_factory, registry_http):
    root = tmp_path_factory.mktemp("site-store") / "store"
    pushed = registry_http.push("busybox", "hpcbox/site-busybox", "1")
    ok(hpcbox(root, "pull", "-q", pushed.ref))
    ok(hpcbox(root, "tag", pushed.ref, "tools/busybox:site"))
    chmod_tree(root, writable=False)
    yield root, "tools/busybox:site"
    chmod_tree(root, writable=True)


def user(home: Path, *args: str, images: str):
    return hpcbox(home, *args, env=hpcbox_env(HPCBOX_IMAGES=images))


def test_users_read_the_site_store_and_keep_containers_at_home(site, tmp_path, registry_http):
    root, name = site
    if os.access(root / "images" / "index.json", os.W_OK):
        pytest.skip("this user can write read-only files (root): the site store would not be read-only")
    before = snapshot(root)
    home = tmp_path / "home"
    listed = json.loads(ok(user(home, "images", "--json", images=str(root))).stdout)
    assert [(i["tags"][-1], i.get("readonly"), i.get("store")) for i in listed] == \
        [("docker.io/tools/busybox:site", True, str(root))]
    assert json.loads(ok(user(home, "inspect", name, images=str(root))).stdout)["Store"] == str(root)
    ok(user(home, "verify", name, images=str(root)))
    # run of an image creates a container in the user's store, from the site's blobs
    proc = ok(user(home, "run", "--rm", name, "sh", "-c", "echo from-site; id -u", images=str(root)))
    assert proc.stdout == "from-site\n0\n"
    cid = ok(user(home, "create", "--name", "mine", name, images=str(root))).stdout.strip()
    assert (home / "containers" / cid / "rootfs" / "bin").is_dir()
    ok(user(home, "run", "mine", "sh", "-c", "echo written > /tmp/f", images=str(root)))
    assert (home / "containers" / cid / "rootfs" / "tmp" / "f").read_text() == "written\n"
    # a user who cannot write the site store still pulls into their own
    other = registry_http.push("busybox", "hpcbox/own-busybox", "2")
    ok(user(home, "pull", "-q", other.ref, images=str(root)))
    listed = json.loads(ok(user(home, "images", "--json", images=str(root))).stdout)
    assert [bool(i.get("readonly")) for i in listed] == [False, True]
    assert_store_valid(home)
    # rmi and prune never change the site store; a clear error for rmi of a site image
    line = one_error(user(home, "rmi", name, images=str(root)), 1)
    assert "read-only image store" in line and str(root) in line
    ok(user(home, "rm", "mine", images=str(root)))
    ok(user(home, "prune", "--containers", images=str(root)))
    ok(user(home, "rmi", other.ref, images=str(root)))
    assert snapshot(root) == before
    assert not (root / "containers").exists() and list((root / "tmp").iterdir()) == []


def test_overlay_container_over_a_site_image(site, tmp_path):
    from hpcbox.containers import overlay

    root, name = site
    works, why = overlay.supported(tmp_path)
    if not works:
        pytest.skip(why)
    before = snapshot(root)
    home = tmp_path / "home"
    ok(user(home, "create", "--overlay", "--name", "ovl", name, images=str(root)))
    proc = ok(user(home, "run", "ovl", "sh", "-c", "echo x > /etc/marker; cat /etc/marker", images=str(root)))
    assert proc.stdout == "x\n"
    ok(user(home, "rm", "ovl", images=str(root)))
    ok(user(home, "prune", images=str(root)))
    assert snapshot(root) == before


def test_unreadable_or_wrong_site_store_is_a_clear_error(tmp_path):
    home = tmp_path / "home"
    line = one_error(user(home, "images", images=str(tmp_path / "nowhere")))
    assert "nowhere does not exist" in line and "HPCBOX_IMAGES" in line
    locked = tmp_path / "locked"
    (locked / "images").mkdir(parents=True)
    (locked / "images" / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("this user reads mode-000 directories (root)")
        line = one_error(user(home, "run", "--pull", "never", "busybox", "true", images=str(locked)))
        assert "not readable for you" in line
    finally:
        locked.chmod(0o755)
    # a container run never needs the image stores: a broken setting does not stop it
    ok(user(home, "ps", images=str(tmp_path / "nowhere")))
