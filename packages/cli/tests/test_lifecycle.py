"""The lifecycle commands end to end in-process: create (pulling), ps, rm, names, clone, inspect, export,
import, load/save in both archive formats, verify, protect, prune, mkrepo; and their one-line errors."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from hpcbox.main import main
from hpcbox.store import Store

# the image builders of test_containers.py (tests are imported by path: --import-mode=importlib)
_spec = importlib.util.spec_from_file_location("_hpcbox_containers_helpers",
                                               Path(__file__).with_name("test_containers.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
LOWER, UPPER, add_image, tar_layer = _helpers.LOWER, _helpers.UPPER, _helpers.add_image, _helpers.tar_layer

REG = "127.0.0.1:5000"
IMG = "example.org/test/img:1"


@pytest.fixture
def cli(cli):
    """The shared in-process CLI (conftest.py) with IMG in its store."""
    add_image(cli.store, IMG)
    return cli


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


def ps(cli):
    return json.loads(ok(cli("ps", "--json")))


def test_create_ps_inspect_rm(cli):
    cid = ok(cli("create", "--name", "box", IMG)).strip()
    assert len(cid) == 64
    listed = ps(cli)
    assert [c["id"] for c in listed] == [cid] and listed[0]["names"] == ["box"]
    assert listed[0]["image"]["reference"] == IMG
    assert ok(cli("ps", "-q")) == cid[:12] + "\n"
    table = ok(cli("ps", "-s"))
    assert table.splitlines()[0].split()[:2] == ["CONTAINER", "ID"] and "box" in table and "SIZE" in table
    info = json.loads(ok(cli("inspect", "box")))
    assert info["Id"] == cid and info["Config"]["config"]["Cmd"] == ["/bin/sh"]
    assert json.loads(ok(cli("inspect", "--type", "container", cid[:8])))["Names"] == ["box"]
    assert "Manifest" in json.loads(ok(cli("inspect", IMG)))
    one_error(cli("inspect", "--type", "image", "box"), 3)
    one_error(cli("inspect", "nothing"), 3)
    assert ok(cli("rm", "box")).strip() == cid
    assert ps(cli) == []
    assert "no container 'box'" in one_error(cli("rm", "box"), 3)


def test_create_pulls_a_missing_image(cli, fake_registry, helpers):
    blob, _ = helpers.make_layer({"hello": b"world"})
    fake_registry.add("test/pulled", "2", [blob])
    cid = ok(cli("create", "-q", f"{REG}/test/pulled:2")).strip()
    c = next(c for c in ps(cli) if c["id"] == cid)
    assert (cli.home / "containers" / cid / "rootfs/hello").read_bytes() == b"world"
    assert c["image"]["reference"] == f"{REG}/test/pulled:2"
    assert any(f"{REG}/test/pulled:2" in i["tags"] for i in json.loads(ok(cli("images", "--json"))))


def test_name_rmname_rename_clone(cli):
    cid = ok(cli("create", IMG)).strip()
    ok(cli("name", cid[:12], "first"))
    ok(cli("rename", "first", "second"))
    assert ps(cli)[0]["names"] == ["second"]
    clone = ok(cli("clone", "--name", "twin", "second")).strip()
    assert clone != cid and {c["id"] for c in ps(cli)} == {cid, clone}
    assert "already used" in one_error(cli("name", clone, "second"))
    ok(cli("rmname", "second"))
    assert [c["names"] for c in ps(cli) if c["id"] == cid] == [[]]
    assert "invalid container name" in one_error(cli("create", "--name", "no/slash", IMG), 2)
    assert len(ps(cli)) == 2


def test_protect_refuses_rm_and_rmi(cli):
    ok(cli("create", "--name", "keep", IMG))
    ok(cli("protect", "keep"))
    assert "protected" in one_error(cli("rm", "-f", "keep"))
    assert ps(cli)[0]["protected"] is True
    ok(cli("unprotect", "keep"))
    ok(cli("rm", "keep"))
    ok(cli("protect", IMG))
    assert "unprotect" in one_error(cli("rmi", IMG))
    assert json.loads(ok(cli("images", "--json")))
    ok(cli("unprotect", IMG))
    ok(cli("rmi", IMG))
    assert json.loads(ok(cli("images", "--json"))) == []
    one_error(cli("protect", "nothing"), 3)


def _members(path):
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_export_then_import_as_image_and_as_container(cli, tmp_path):
    ok(cli("create", "--name", "box", IMG))
    out = tmp_path / "rootfs.tar"
    ok(cli("export", "-o", str(out), "box"))
    members = _members(out)
    assert members["etc/os-release"].isfile() and members["data/abs"].issym()
    assert members["data/b"].islnk() or members["data/a"].islnk()
    assert "data/gone" not in members and members["etc/os-release"].uid == 0
    gz = tmp_path / "rootfs.tar.gz"
    gz.write_bytes(gzip.compress(out.read_bytes()))
    config_digest = ok(cli("import", str(gz), "local/imported:3")).strip()
    assert config_digest.startswith("sha256:")
    images = {t: i for i in json.loads(ok(cli("images", "--json"))) for t in i["tags"]}
    assert images["docker.io/local/imported:3"]["id"] == config_digest
    assert ok(cli("verify", "local/imported:3")).endswith("OK\n")
    config = json.loads(ok(cli("inspect", "local/imported:3")))["Config"]
    assert config["rootfs"]["diff_ids"] and config["config"]["Env"][0].startswith("PATH=")
    cid = ok(cli("create", "local/imported:3")).strip()
    assert (cli.home / "containers" / cid / "rootfs/etc/os-release").read_bytes() == b"ID=test\n"
    direct = ok(cli("import", "--tocontainer", "--name", "direct", str(out), "local/direct")).strip()
    assert (cli.home / "containers" / direct / "rootfs/data/new").read_bytes() == b"new"
    assert [c["names"] for c in ps(cli) if c["id"] == direct] == [["direct"]]


def test_import_and_load_reject_bad_files(cli, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"this is not a tar archive at all" * 40)
    before = sorted(p.name for p in cli.store.blobs_dir.iterdir())
    assert "not a tar archive" in one_error(cli("import", str(junk), "local/x"))
    assert sorted(p.name for p in cli.store.blobs_dir.iterdir()) == before
    assert "no file" in one_error(cli("import", str(tmp_path / "missing"), "local/x"))
    assert "not a readable tar" in one_error(cli("load", "-i", str(junk)))
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        info = tarfile.TarInfo("hello")
        tar.addfile(info, io.BytesIO(b""))
    assert "neither a docker-archive" in one_error(cli("load", "-i", str(plain)))
    assert "no file" in one_error(cli("load", "-i", str(tmp_path / "missing.tar")))
    assert not [p for p in cli.store.tmp_dir.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_save_then_load_round_trip(cli, tmp_path, fmt):
    archive = tmp_path / f"{fmt}.tar"
    ok(cli("save", "--format", fmt, "-o", str(archive), IMG))
    members = _members(archive)
    if fmt == "docker":
        with tarfile.open(archive) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())
        assert manifest[0]["RepoTags"] == [IMG] and len(manifest[0]["Layers"]) == 2
        assert "repositories" in members
    else:
        assert {"oci-layout", "index.json"} <= set(members)
    original = json.loads(ok(cli("inspect", IMG)))
    other = tmp_path / "other"
    code = main(["--home", str(other), "load", "-i", str(archive)])
    assert code == 0
    code = main(["--home", str(other), "create", "--name", "again", IMG])
    assert code == 0
    loaded = Store(other)
    assert loaded.find([IMG]).id == original["Id"]  # same config: same image id
    from hpcbox.containers import ContainerStore

    c = ContainerStore(loaded).get("again")
    assert (c.rootfs / "data/new").read_bytes() == b"new" and not (c.rootfs / "data/gone").exists()


def test_save_gzip_layers_as_uncompressed_docker_archive(cli, tmp_path, fake_registry, helpers):
    blob, tar_bytes = helpers.make_layer({"f": b"content"})
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [helpers.digest_of(tar_bytes)]}}
    fake_registry.add("test/gz", "1", [blob], config=config)
    ok(cli("create", f"{REG}/test/gz:1"))
    archive = tmp_path / "gz.tar"
    ok(cli("save", "-o", str(archive), f"{REG}/test/gz:1"))
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert tar.extractfile(manifest[0]["Layers"][0]).read() == tar_bytes


def test_verify_finds_a_damaged_layer(cli):
    assert ok(cli("verify", IMG)) == f"{IMG}: OK\n"
    manifest = json.loads(cli.store.read_blob(cli.store.find([IMG]).manifest_digest))
    path = cli.store.blob_path(manifest["layers"][1]["digest"])
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"X")
    code, _, err = cli("verify", IMG)
    assert code == 6 and "layer 1" in err and f"hpcbox verify --repair {IMG}" in err.splitlines()[-1]


def test_prune_removes_unused_blobs_and_leftovers(cli):
    cid = ok(cli("create", IMG)).strip()
    leftover = cli.home / "containers" / (".create-" + "0" * 64)
    (leftover / "rootfs/d").mkdir(parents=True)
    os.chmod(leftover / "rootfs/d", 0)
    junk = cli.store.ingest_bytes(b"nobody refers to me")
    out = ok(cli("prune"))
    assert "1 leftovers" in out and not leftover.exists() and not cli.store.has_blob(junk)
    assert [c["id"] for c in ps(cli)] == [cid]
    ok(cli("protect", cid))
    ok(cli("create", IMG))
    out = ok(cli("prune", "--containers"))
    assert out.count("Deleted container") == 1 and [c["id"] for c in ps(cli)] == [cid]


def test_mkrepo(cli, tmp_path):
    target = tmp_path / "new-store"
    assert ok(cli("mkrepo", str(target))).strip() == str(target)
    assert json.loads((target / "images/oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert (target / "containers").is_dir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full/file").write_text("x")
    assert "not empty" in one_error(cli("mkrepo", str(tmp_path / "full")), 2)


def test_layers_tar_helper_is_deterministic():
    assert tar_layer(LOWER) == tar_layer(LOWER) and tar_layer(UPPER) != tar_layer(LOWER)


def test_stdin_and_stdout_archives(cli, tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBOX_")}
    base = [sys.executable, "-m", "hpcbox", "--home", str(cli.home)]
    saved = subprocess.run([*base, "save", "-o", "-", IMG], capture_output=True, env=env, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as tar:
        assert tar.getmember("manifest.json").isfile()
    other = tmp_path / "other"
    proc = subprocess.run([sys.executable, "-m", "hpcbox", "--home", str(other), "load", "-i", "-"],
                          input=saved, capture_output=True, env=env, check=False)
    assert proc.returncode == 0 and proc.stdout.decode() == f"Loaded image: {IMG}\n", proc.stderr
    ok(cli("create", "--name", "box", IMG))
    exported = subprocess.run([*base, "export", "-o", "-", "box"], capture_output=True, env=env,
                              check=True).stdout
    proc = subprocess.run([*base, "import", "-", "local/from-stdin"], input=exported, capture_output=True,
                          env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert ok(cli("verify", "local/from-stdin")).endswith("OK\n")


def test_create_refuses_a_stored_image_of_another_platform(cli):
    from hpcbox.containers import ContainerStore

    class Arm:
        os, architecture = "linux", "arm64"

    with pytest.raises(Exception, match="is for linux/amd64; pull it again with --platform"):
        ContainerStore(cli.store).create(IMG, platform=Arm())
    assert ps(cli) == []


def test_prune_containers_spares_one_in_use(cli):
    from hpcbox.containers import ContainerStore

    ok(cli("create", "--name", "busy", IMG))
    c = ContainerStore(cli.store).get("busy")
    with c.in_use():
        assert "in use" in one_error(cli("rm", "busy"))
        assert "Deleted container" not in ok(cli("prune", "--containers"))
    assert "Deleted container" in ok(cli("prune", "--containers"))
    assert ps(cli) == []
