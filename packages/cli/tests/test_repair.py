"""Store self-repair: a damaged blob is fetched again by `pull`, named with the one command that repairs
it by `create`/`run`, and repaired by `verify --repair`, also when another image shares it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REG = "127.0.0.1:5000"


def ok(result):
    code, out, err = result
    assert code == 0, (code, out, err)
    return out


def one_error(result, code):
    rc, out, err = result
    lines = err.strip().splitlines()
    assert rc == code and len(lines) == 1 and lines[0].startswith("hpcbox: error: "), (rc, out, err)
    assert "unexpected" not in lines[0]
    return lines[0]


@pytest.fixture
def pulled(cli, fake_registry, helpers):
    """Two images that share their first layer, pulled; returns (names, manifests)."""
    made = [helpers.make_layer(files) for files in ({"shared": os.urandom(20_000)}, {"a": b"a" * 5000},
                                                    {"b": b"b" * 5000})]

    def config(*tars):
        return {"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [helpers.digest_of(t) for t in tars]}}

    (shared, shared_tar), (own_a, a_tar), (own_b, b_tar) = made
    fake_registry.add("test/a", "1", [shared, own_a], config=config(shared_tar, a_tar))
    fake_registry.add("test/b", "1", [shared, own_b], config=config(shared_tar, b_tar))
    names = [f"{REG}/test/a:1", f"{REG}/test/b:1"]
    for name in names:
        ok(cli("pull", "-q", name))
    manifests = [json.loads(cli.store.read_blob(cli.store.find([n]).manifest_digest)) for n in names]
    return names, manifests


def _damage(path, how):
    os.chmod(path, 0o644)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncate" else data[:-1] + bytes([data[-1] ^ 1]))


def test_pull_fetches_a_truncated_layer_again(cli, pulled):
    names, manifests = pulled
    layer = manifests[0]["layers"][1]
    _damage(cli.store.blob_path(layer["digest"]), "truncate")
    assert ok(cli("pull", names[0])).strip() == names[0]
    assert cli.store.blob_path(layer["digest"]).stat().st_size == layer["size"]
    assert ok(cli("verify", names[0])) == f"{names[0]}: OK\n"


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_create_names_a_damaged_layer_and_the_pull_that_repairs_it(cli, pulled, how):
    names, manifests = pulled
    layer = manifests[0]["layers"][1]
    _damage(cli.store.blob_path(layer["digest"]), how)
    line = one_error(cli("create", names[0]), 6)
    assert f"layer blob {layer['digest']} is damaged" in line
    image = cli.store.find([names[0]])
    repair = f"hpcbox pull {image.digests[0]}"
    assert line.endswith(f"run '{repair}' to fetch it again")
    assert not cli.store.blob_path(layer["digest"]).exists()  # removed: the next pull fetches it
    ok(cli(*repair.split()[1:]))
    cid = ok(cli("create", names[0])).strip()
    assert (cli.home / "containers" / cid / "rootfs/a").read_bytes() == b"a" * 5000
    assert not [p for p in os.listdir(cli.home / "tmp") if p.endswith(".partial")]


def test_a_malformed_layer_whose_blob_is_intact_is_named_as_the_images_fault(cli, fake_registry, helpers):
    """The blob is what the registry served (its digest checks): no repair can help, so none is advised
    and the blob stays."""
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        link = tarfile.TarInfo("bin/link")
        link.type, link.linkname = tarfile.LNKTYPE, "bin/missing"
        tar.addfile(link)
    blob = gzip.compress(raw.getvalue(), mtime=0)
    fake_registry.add("test/malformed", "1", [blob], config={
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [helpers.digest_of(raw.getvalue())]}})
    name = f"{REG}/test/malformed:1"
    ok(cli("pull", "-q", name))
    line = one_error(cli("create", name), 6)
    assert "bin/missing" in line and "malformed" in line and "publisher" in line, line
    assert "repair" not in line and "hpcbox pull" not in line, line
    manifest = json.loads(cli.store.read_blob(cli.store.find([name]).manifest_digest))
    assert cli.store.blob_path(manifest["layers"][0]["digest"]).is_file()
    assert ok(cli("verify", name)) == f"{name}: OK\n"
    assert json.loads(ok(cli("ps", "--json"))) == []


@pytest.mark.parametrize("what", ["config", "manifest"])
def test_a_truncated_config_or_manifest_is_named_not_a_json_traceback(cli, pulled, what):
    names, manifests = pulled
    image = cli.store.find([names[0]])
    digest = image.manifest_digest if what == "manifest" else manifests[0]["config"]["digest"]
    _damage(cli.store.blob_path(digest), "truncate")
    for command in (("create", names[0]), ("run", "--rm", "--engine", "ptrace", names[0], "true")):
        line = one_error(cli(*command), 6)
        assert f"{what} blob {digest}" in line and f"hpcbox pull {image.digests[0]}" in line
    ok(cli("pull", image.digests[0]))
    ok(cli("create", names[0]))


@pytest.mark.parametrize("what", ["config", "manifest"])
def test_reading_commands_name_a_damaged_config_or_manifest_and_leave_it(cli, pulled, tmp_path, what):
    """inspect, save and images -l read the manifest and config too: one line naming the blob and its
    repair (not 'unexpected JSONDecodeError'), and nothing written: the blob stays, no archive is left."""
    names, manifests = pulled
    image = cli.store.find([names[0]])
    digest = image.manifest_digest if what == "manifest" else manifests[0]["config"]["digest"]
    path = cli.store.blob_path(digest)
    _damage(path, "truncate")
    damaged = path.read_bytes()
    archive = tmp_path / "out.tar"
    commands = [("inspect", names[0]), ("save", "-o", str(archive), names[0])]
    for command in commands + ([("images", "-l")] if what == "manifest" else []):  # (-l: the layers)
        line = one_error(cli(*command), 6)
        assert f"{what} blob {digest} is damaged" in line and f"hpcbox pull {image.digests[0]}" in line, line
        assert path.read_bytes() == damaged
    assert not archive.exists()
    ok(cli("pull", image.digests[0]))
    assert json.loads(ok(cli("inspect", names[0])))["Id"] == image.id


def test_no_blob_is_collected_while_a_listed_manifest_is_damaged(cli, pulled):
    """Which blobs a damaged manifest needs cannot be known: rmi and prune delete none of them, say
    why, and the pull that repairs the manifest then needs no layer again."""
    names, manifests = pulled
    image = cli.store.find([names[0]])
    _damage(cli.store.blob_path(image.manifest_digest), "truncate")
    own = [manifests[0]["config"]["digest"], manifests[0]["layers"][1]["digest"]]
    for command in (("rmi", names[1]), ("prune",)):
        code, _, err = cli(*command)
        assert code == 0 and "Freed" not in err, err
        assert f"the manifest of {names[0]} is damaged" in err, err
        assert f"hpcbox pull {image.digests[0]}" in err, err
        assert all(cli.store.blob_path(d).is_file() for d in own)
    log_path = cli.home.parent / "fetch.log"
    fetched = log_path.read_text() if log_path.exists() else ""
    ok(cli("pull", image.digests[0]))
    assert ok(cli("verify", names[0])) == f"{names[0]}: OK\n"
    log = log_path.read_text()
    assert not any(d in log[len(fetched):] for d in own)  # only the manifest came again
    assert "Freed" in ok(cli("prune"))  # now the untagged image's own blobs go
    assert all(cli.store.blob_path(d).is_file() for d in own)


def test_verify_repair_fixes_a_shared_blob_for_every_image(cli, pulled):
    names, manifests = pulled
    shared = manifests[0]["layers"][0]["digest"]
    assert manifests[1]["layers"][0]["digest"] == shared
    _damage(cli.store.blob_path(shared), "flip")
    for name in names:
        assert cli("verify", name)[0] == 6
    code, out, err = cli("verify", "--repair", names[0])
    assert code == 0 and out == f"{names[0]}: repaired\n", err
    assert "repairing 1 blobs" in err
    for name in names:
        assert ok(cli("verify", name)) == f"{name}: OK\n"


@pytest.mark.parametrize("damage", ["truncate", "empty", "missing"])
def test_a_damaged_container_is_listed_marked_refused_by_run_and_removable(cli, pulled, damage):
    names, _ = pulled
    cid = ok(cli("create", "--name", "work", names[0])).strip()
    other = ok(cli("create", names[1])).strip()
    meta = cli.home / "containers" / cid / "container.json"
    if damage == "missing":
        meta.unlink()
    else:
        meta.write_bytes(meta.read_bytes()[: 140 if damage == "truncate" else 0])
    rows = json.loads(ok(cli("ps", "--json")))
    assert [r["id"] for r in rows] == [other, cid]
    assert "container.json" in rows[1]["damaged"]
    code, out, err = cli("ps")
    assert code == 0 and "DAMAGED" in out and "hpcbox rm" in err
    assert cid[:12] in ok(cli("ps", "-q")).split()
    target = "work" if damage == "truncate" else cid[:12]  # a truncated file still shows the name
    assert rows[1]["names"] == (["work"] if damage == "truncate" else [])
    line = one_error(cli("run", "--engine", "ptrace", target, "true"), 6)
    assert f"container {target} is damaged" in line and f"hpcbox rm {target}" in line
    assert ok(cli("rm", target)).strip() == cid
    assert not (cli.home / "containers" / cid).exists()
    assert [r["id"] for r in json.loads(ok(cli("ps", "--json")))] == [other]


def test_a_name_cut_before_the_end_of_its_list_is_still_read(cli, pulled):
    names, _ = pulled
    cid = ok(cli("create", "--name", "work", names[0])).strip()
    meta = cli.home / "containers" / cid / "container.json"
    text = meta.read_bytes()
    meta.write_bytes(text[: text.index(b'"work"') + len(b'"work"')])  # the list is never closed
    row = next(r for r in json.loads(ok(cli("ps", "--json"))) if r["id"] == cid)
    assert row["names"] == ["work"] and "container.json" in row["damaged"]
    assert "container work is damaged" in one_error(cli("run", "--engine", "ptrace", "work", "true"), 6)


def test_a_bare_word_is_not_pulled_while_a_damaged_container_has_lost_its_name(cli, pulled):
    names, _ = pulled
    cid = ok(cli("create", "--name", "work", names[0])).strip()
    (cli.home / "containers" / cid / "container.json").write_bytes(b'{"i')
    asked = []
    cli.client.resolve = lambda *a, **k: asked.append(a) or pytest.fail("went to a registry")
    line = one_error(cli("run", "--engine", "ptrace", "work", "true"), 3)
    assert "no such container or image 'work'" in line and "1 damaged container" in line
    assert "hpcbox prune" in line and "work:latest" in line
    assert asked == []
    ok(cli("rm", cid[:12]))  # once it is gone, a bare word is an image name again
    assert [r["id"] for r in json.loads(ok(cli("ps", "--json")))] == []


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_run_of_a_damaged_container_in_a_fresh_process_is_one_line(cli, pulled, damage):
    """`hpcbox run NAME` starts on the lean path, which reads container.json before json is imported."""
    names, _ = pulled
    cid = ok(cli("create", "--name", "work", names[0])).strip()
    meta = cli.home / "containers" / cid / "container.json"
    damaged = {"truncate": meta.read_bytes()[:140], "empty": b"", "garbage": b'{"id": "x", "n'}
    meta.write_bytes(damaged[damage])
    target = "work" if damage == "truncate" else cid[:12]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPCBOX_")}
    done = subprocess.run([sys.executable, "-m", "hpcbox", "--home", str(cli.home), "run", target, "true"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    line = one_error((done.returncode, done.stdout, done.stderr), 6)
    assert f"container {target} is damaged" in line and f"hpcbox rm {target}" in line


def test_prune_reclaims_damaged_containers_only(cli, pulled):
    names, _ = pulled
    bad = ok(cli("create", names[0])).strip()
    good = ok(cli("create", names[1])).strip()
    (cli.home / "containers" / bad / "container.json").write_bytes(b'{"id": "')
    out = ok(cli("prune"))
    assert f"Deleted damaged container: {bad}" in out
    assert sorted(os.listdir(cli.home / "containers")) == [good]
