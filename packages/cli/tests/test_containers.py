"""The container store: atomic create, names, removal of unfriendly trees, interruption and concurrency."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import stat
import tarfile
import threading
import time

import pytest

from hpcbox.containers import (
    AmbiguousContainerError,
    ContainerError,
    ContainerExistsError,
    ContainerInUseError,
    ContainerStore,
    ProtectedError,
    UnknownContainerError,
    remove_tree,
)
from hpcbox.store import Store
from hpcbox.store.atomic import json_document
from hpcbox.store.layout import ANN_CONFIG_DIGEST

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"


def tar_layer(entries) -> bytes:
    """entries: (name, kind, mode, payload) with kind file|dir|symlink|hardlink."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, payload in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = 1_600_000_000
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            types = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}
            info.type = types[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = payload
            tar.addfile(info)
    return raw.getvalue()


LOWER = [("etc", "dir", 0o755, None), ("etc/os-release", "file", 0o644, b"ID=test\n"),
         ("data", "dir", 0o755, None), ("data/a", "file", 0o644, b"aaa"),
         ("data/b", "hardlink", 0o644, "data/a"),
         ("data/abs", "symlink", 0o777, "/etc/os-release"), ("data/gone", "file", 0o644, b"x"),
         ("locked", "dir", 0o000, None), ("locked/secret", "file", 0o000, b"s")]
UPPER = [("data/.wh.gone", "file", 0o644, b""), ("data/new", "file", 0o600, b"new")]


def add_image(store: Store, name: str, layers=(LOWER, UPPER), config=None) -> str:
    store.init()
    blobs = [tar_layer(entries) for entries in layers]
    import hashlib

    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
    config = config or {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                        "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_digest = store.ingest_bytes(json.dumps(config).encode())
    layer_descs = [{"mediaType": OCI_TAR, "digest": store.ingest_bytes(b), "size": len(b)} for b in blobs]
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                           "size": len(json.dumps(config))}, "layers": layer_descs}
    data = json.dumps(manifest).encode()
    digest = store.ingest_bytes(data)
    desc = {"mediaType": manifest["mediaType"], "digest": digest, "size": len(data),
            "annotations": {ANN_CONFIG_DIGEST: config_digest},
            "platform": {"architecture": "amd64", "os": "linux"}}
    store.add_image(desc, [name], [digest, config_digest, *(d["digest"] for d in layer_descs)])
    return digest


@pytest.fixture
def cs(tmp_path):
    store = Store(tmp_path / "home")
    add_image(store, "example.org/test/img:1")
    return ContainerStore(store)


def test_create_applies_the_layers_and_records_the_image(cs):
    c = cs.create("example.org/test/img:1", name="box")
    assert len(c.id) == 64 and c.short_id == c.id[:12] and c.names == ["box"]
    assert c.dir == cs.dir / c.id and c.rootfs == c.dir / "rootfs"
    assert (c.rootfs / "etc/os-release").read_bytes() == b"ID=test\n"
    assert os.readlink(c.rootfs / "data/abs") == "/etc/os-release"
    assert os.stat(c.rootfs / "data/a").st_ino == os.stat(c.rootfs / "data/b").st_ino
    assert not (c.rootfs / "data/gone").exists() and (c.rootfs / "data/new").read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(c.rootfs / "locked").st_mode) == 0o700  # the layers' documented fix
    assert c.image["reference"] == "example.org/test/img:1"
    assert c.image["manifest"].startswith("sha256:") and c.image["config"].startswith("sha256:")
    assert c.image_config["config"]["Cmd"] == ["/bin/sh"]
    assert c.created and c.protected is False and c.execmode is None and c.settings == {}
    assert c.config_path == c.dir / "config.json"
    assert [x.id for x in cs.list()] == [c.id]
    assert sorted(p.name for p in cs.dir.iterdir()) == [c.id]  # no temp dir left



def test_a_container_for_one_run_is_not_synced_and_reads_back_alike(cs, monkeypatch):
    """`hpcbox run --rm`'s create (durable=False) makes no fsync (a round trip to the server on a shared
    filesystem) and gives the same container record as a durable create, which syncs."""
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    once = cs.create("example.org/test/img:1", name="once", durable=False)
    assert synced == []
    cs.create("example.org/test/img:1", name="kept")
    assert synced
    a, b = cs.get("once").as_dict(), cs.get("kept").as_dict()
    for meta in (a, b):
        meta.pop("id"), meta.pop("names"), meta.pop("created")
    assert a == b and once.names == ["once"]
    assert (once.dir / "container.json").read_bytes() == json_document(once.as_dict())


def test_only_run_rm_asks_for_a_container_that_is_not_synced(cs, monkeypatch):
    from hpcbox.commands import run as command
    from hpcbox.quick import parse_run

    asked = []
    real = cs.create
    monkeypatch.setattr(cs, "create", lambda *a, **k: asked.append(k["durable"]) or real(*a, **k))
    for words in (["run", "--rm", "example.org/test/img:1"], ["run", "example.org/test/img:1"]):
        command._create(parse_run(words), cs.store, cs)
    assert asked == [False, True]

def test_get_by_name_id_and_prefix(cs):
    a = cs.create("example.org/test/img:1", name="first")  # not a hex digit: get() tries names first
    b = cs.create("example.org/test/img:1")
    assert cs.get("first").id == a.id
    assert cs.get(b.id).id == b.id
    assert cs.get(b.id[:10]).id == b.id
    with pytest.raises(UnknownContainerError, match="no container 'nope'; run 'hpcbox ps'"):
        cs.get("nope")
    for _ in range(64):  # ids are random: make containers until two share a first digit
        if len({c.id[0] for c in cs.list()}) < len(cs.list()):
            break
        cs.create("example.org/test/img:1")
    first = [c.id[0] for c in cs.list()]
    shared = next(d for d in first if first.count(d) > 1)
    with pytest.raises(AmbiguousContainerError, match="matches"):
        cs.get(shared)


def test_names_are_unique(cs):
    a = cs.create("example.org/test/img:1", name="one")
    with pytest.raises(ContainerExistsError, match="'one' is already used"):
        cs.create("example.org/test/img:1", name="one")
    assert [c.id for c in cs.list()] == [a.id]
    assert [p.name for p in cs.dir.iterdir()] == [a.id]  # the refused create left nothing
    b = cs.create("example.org/test/img:1", name="two")
    with pytest.raises(ContainerExistsError):
        cs.add_name(b.id, "one")
    cs.add_name(b.id, "three")
    assert cs.get("three").id == b.id and cs.get("two").names == ["two", "three"]
    cs.rename("three", "four")
    assert cs.get(b.id).names == ["two", "four"]
    with pytest.raises(ContainerExistsError):
        cs.rename("four", "one")
    cs.remove_name("two")
    assert cs.get(b.id).names == ["four"]
    with pytest.raises(ContainerError, match="no container is named 'two'"):
        cs.remove_name("two")
    with pytest.raises(ContainerError, match="invalid container name"):
        cs.add_name(b.id, "bad/name")
    with pytest.raises(ContainerError, match="invalid container name"):
        cs.add_name(b.id, "f" * 64)  # would be confused with an id


def test_unknown_image_creates_nothing(cs):
    with pytest.raises(Exception, match="no image"):
        cs.create("example.org/test/missing:1")
    assert cs.list() == [] and not any(cs.dir.iterdir())


def test_remove_deletes_a_tree_the_user_locked_itself_out_of(cs):
    c = cs.create("example.org/test/img:1", name="box")
    deep = c.rootfs / "x/y"
    deep.mkdir(parents=True)
    (deep / "f").write_text("f")
    os.chmod(deep / "f", 0)
    os.chmod(deep, 0)
    os.chmod(c.rootfs / "x", 0o500)
    os.chmod(c.rootfs / "locked", 0)
    cs.remove("box")
    assert cs.list() == [] and not any(cs.dir.iterdir())


def test_protected_and_in_use_containers_refuse_removal(cs):
    c = cs.create("example.org/test/img:1", name="box")
    c.update(protected=True)
    with pytest.raises(ProtectedError, match="run 'hpcbox unprotect box' first"):
        cs.remove("box", force=True)
    c.update(protected=False)
    with c.in_use():
        assert cs.get("box").is_in_use()
        with pytest.raises(ContainerInUseError, match="rm -f"):
            cs.remove("box")
    assert not cs.get("box").is_in_use()
    cs.remove("box")
    assert cs.list() == []


def test_update_persists_fields_atomically(cs):
    c = cs.create("example.org/test/img:1")
    c.update(execmode="R1", settings={"engine": "runc", "nvidia": False})
    again = cs.get(c.id)
    assert again.execmode == "R1" and again.settings == {"engine": "runc", "nvidia": False}
    assert json.loads((c.dir / "container.json").read_text())["execmode"] == "R1"
    with pytest.raises(ValueError):
        c.update(id="0" * 64)


def test_clone_copies_rootfs_links_and_modes(cs):
    c = cs.create("example.org/test/img:1", name="orig")
    c.update(execmode="F1")
    c.config_path.write_text("{}")
    os.chmod(c.rootfs / "data/new", 0o000)
    k = cs.clone("orig", name="copy")
    assert k.id != c.id and k.names == ["copy"] and k.execmode == "F1"
    assert (k.rootfs / "etc/os-release").read_bytes() == b"ID=test\n"
    assert os.readlink(k.rootfs / "data/abs") == "/etc/os-release"
    assert os.stat(k.rootfs / "data/a").st_ino == os.stat(k.rootfs / "data/b").st_ino
    assert os.stat(k.rootfs / "data/a").st_ino != os.stat(c.rootfs / "data/a").st_ino
    assert stat.S_IMODE(os.lstat(k.rootfs / "data/new").st_mode) == 0o000
    assert os.stat(k.rootfs / "etc/os-release").st_mtime == 1_600_000_000
    assert k.config_path.read_text() == "{}"
    (k.rootfs / "etc/os-release").write_text("changed")
    assert (c.rootfs / "etc/os-release").read_bytes() == b"ID=test\n"


def _slow_create(home, marker):
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when the test run ignores SIGINT
    store = Store(home)
    cs = ContainerStore(store)
    meta = {"id": "", "names": ["slow"], "image": {}, "image_config": {}, "created": "", "protected": False,
            "execmode": None, "settings": {}}

    def fill(rootfs):
        (rootfs / "half").write_text("written")
        open(marker, "w").close()
        time.sleep(60)

    cs._build(meta, fill)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_create_lists_nothing_and_is_cleaned(cs, tmp_path, sig):
    marker = tmp_path / "marker"
    proc = multiprocessing.get_context("fork").Process(target=_slow_create, args=(cs.store.home, marker))
    proc.start()
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists()
    leftovers = [p for p in cs.dir.iterdir() if p.name.startswith(".create-")]
    assert leftovers  # the work directory exists while the create runs ...
    assert cs.clean_leftovers() == []  # ... and is left alone: its creator holds the lock
    os.kill(proc.pid, sig)
    proc.join(120)
    assert proc.exitcode is not None, "the interrupted create did not end"  # its cleanup is done then
    assert cs.list() == []
    with pytest.raises(UnknownContainerError):
        cs.get("slow")
    if sig == signal.SIGKILL:
        assert [p.name for p in cs.dir.iterdir()] == [leftovers[0].name]
        assert cs.clean_leftovers() == [leftovers[0].name]
    assert not any(cs.dir.iterdir())
    c = cs.create("example.org/test/img:1", name="slow")  # the name is free, the next create works
    assert cs.get("slow").id == c.id


def _create_one(home, out):
    c = ContainerStore(Store(home)).create("example.org/test/img:1")
    out.put(c.id)


def test_concurrent_creates_from_one_image(cs):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_create_one, args=(cs.store.home, out)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)  # a deadline, not an expectation: 8 creates on a loaded 2-core machine
    assert all(p.exitcode == 0 for p in procs)
    ids = {out.get(timeout=60) for _ in procs}
    assert len(ids) == 8
    assert {c.id for c in cs.list()} == ids
    for c in cs.list():
        assert (c.rootfs / "data/new").read_bytes() == b"new"


def test_concurrent_creates_with_one_name_give_one_container(cs):
    errors = []
    made = []

    def worker():
        try:
            made.append(ContainerStore(cs.store).create("example.org/test/img:1", name="same").id)
        except ContainerExistsError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len(errors) == 3
    assert [c.id for c in cs.list()] == made


def test_remove_tree_of_a_single_file_and_missing_path(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    remove_tree(f)
    remove_tree(tmp_path / "missing")
    assert not f.exists()
