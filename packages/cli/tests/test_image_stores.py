"""Read-only image stores (HPCBOX_IMAGES, image_stores in config files): images, inspect, create,
verify and save read them; rmi, tag and prune never change them; clear errors for bad settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from hpcbox import settings
from hpcbox.store import Store

_spec = importlib.util.spec_from_file_location("_hpcbox_containers_helpers2",
                                               Path(__file__).with_name("test_containers.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
add_image = _helpers.add_image

SITE_IMG = "example.org/site/tool:1"
OWN_IMG = "example.org/mine/app:2"


def ok(result):
    code, out, err = result
    assert code == 0, (code, out, err)
    return out


def one_error(result, code=None):
    rc, out, err = result
    assert rc != 0 and (code is None or rc == code), (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcbox: error: ") and "; " in lines[0], err
    return lines[0]


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "site"
    store = Store(root)
    store.init()
    add_image(store, SITE_IMG)
    monkeypatch.setenv("HPCBOX_IMAGES", str(root))
    monkeypatch.delenv("HPCBOX_SITE_CONFIG", raising=False)
    return root


def test_site_images_are_listed_inspected_created_verified_and_saved(cli, site, tmp_path):
    add_image(cli.store, OWN_IMG)
    before = snapshot(site)
    listed = json.loads(ok(cli("images", "--json")))
    assert [(i["tags"], i.get("readonly", False)) for i in listed] == [([OWN_IMG], False), ([SITE_IMG], True)]
    table = ok(cli("images"))
    assert "STORE" in table.splitlines()[0] and "(read-only)" in table
    assert json.loads(ok(cli("inspect", SITE_IMG)))["Store"] == str(site)
    cid = ok(cli("create", "--name", "fromsite", SITE_IMG)).strip()
    assert (cli.home / "containers" / cid / "rootfs").is_dir()
    assert ok(cli("verify", SITE_IMG)) == f"{SITE_IMG}: OK\n"
    ok(cli("save", "-o", str(tmp_path / "out.tar"), SITE_IMG))
    assert (tmp_path / "out.tar").stat().st_size > 0
    # nothing removes or changes the site store
    assert "read-only image store" in one_error(cli("rmi", SITE_IMG), 1)
    assert "pull it into your own store" in one_error(cli("tag", SITE_IMG, "example.org/x/y:1"), 2)
    ok(cli("rm", "fromsite"))
    ok(cli("prune", "--containers"))
    ok(cli("rmi", OWN_IMG))
    assert snapshot(site) == before
    assert [i["tags"] for i in json.loads(ok(cli("images", "--json")))] == [[SITE_IMG]]


def test_own_store_wins_and_empty_variable_disables(cli, site, monkeypatch):
    add_image(cli.store, SITE_IMG)
    listed = json.loads(ok(cli("images", "--json")))
    assert [i.get("readonly", False) for i in listed] == [False, True]
    assert json.loads(ok(cli("inspect", SITE_IMG)))["Store"] == str(cli.home)
    monkeypatch.setenv("HPCBOX_IMAGES", "")
    assert [i.get("readonly", False) for i in json.loads(ok(cli("images", "--json")))] == [False]


def test_bare_oci_layout_and_config_files(cli, site, tmp_path, monkeypatch):
    monkeypatch.delenv("HPCBOX_IMAGES")
    site_config = tmp_path / "etc-hpcbox.json"
    site_config.write_text(json.dumps({"image_stores": [str(site / "images")]}))  # the layout itself
    monkeypatch.setenv("HPCBOX_SITE_CONFIG", str(site_config))
    assert [i["tags"] for i in json.loads(ok(cli("images", "--json")))] == [[SITE_IMG]]
    cli.home.mkdir(parents=True, exist_ok=True)
    (cli.home / "config.json").write_text(json.dumps({"image_stores": []}))  # the user's own choice wins
    assert json.loads(ok(cli("images", "--json"))) == []
    (cli.home / "config.json").write_text(json.dumps({"image_stores": "nope"}))
    assert "image_stores" in one_error(cli("images"), 2)


def test_bad_store_paths_are_clear_errors(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HPCBOX_IMAGES", str(tmp_path / "missing"))
    line = one_error(cli("images"))
    assert "missing does not exist" in line and "HPCBOX_IMAGES" in line
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("HPCBOX_IMAGES", str(tmp_path / "empty"))
    assert "holds no images/index.json" in one_error(cli("images"))


def test_image_stores_settings_order(tmp_path, monkeypatch):
    class Args:
        home = str(tmp_path / "h")

    monkeypatch.setenv("HPCBOX_IMAGES", "/a::/b")
    assert settings.image_stores(Args) == ["/a", "/b"]
    monkeypatch.delenv("HPCBOX_IMAGES")
    monkeypatch.setenv("HPCBOX_SITE_CONFIG", str(tmp_path / "none.json"))
    assert settings.image_stores(Args) == []
