"""The store's layout, index operations, image lookup, atomic writes, locks and garbage collection."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbox import storefiles
from hpcbox.store import Store, StoreCorruptError, UnknownImageError, lookup
from hpcbox.store.atomic import atomic_write_bytes
from hpcbox.store.layout import ANN_CONFIG_DIGEST, ANN_REF_NAME
from hpcbox.store.lock import FileLock, LockBusy, try_lock


def _image(store: Store, layer: bytes, name: str):
    """Commit a tiny image made of one layer; returns (manifest digest, config digest, layer digest)."""
    layer_digest = store.ingest_bytes(layer)
    config = store.ingest_bytes(json.dumps({"layer": layer.decode()}).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                           "size": 1},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                            "size": len(layer)}]}
    data = json.dumps(manifest).encode()
    digest = store.ingest_bytes(data)
    desc = {"mediaType": manifest["mediaType"], "digest": digest, "size": len(data),
            "annotations": {ANN_CONFIG_DIGEST: config}}
    store.add_image(desc, [name, name.rsplit(":", 1)[0] + "@" + digest], [digest, config, layer_digest])
    return digest, config, layer_digest


def test_init_writes_an_oci_layout(tmp_path):
    store = Store(tmp_path / "home")
    store.init()
    store.init()  # idempotent
    assert json.loads((store.images_dir / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(store.index_path.read_text())
    assert index["schemaVersion"] == 2 and index["manifests"] == []
    assert store.blobs_dir.is_dir()
    assert sorted(p.name for p in store.images_dir.iterdir()) == ["blobs", "index.json", "oci-layout"]


def test_constructing_a_store_creates_nothing(tmp_path):
    store = Store(tmp_path / "home")
    assert store.images() == []
    assert not (tmp_path / "home").exists()


def test_ingest_is_content_addressed_and_shared(tmp_path):
    store = Store(tmp_path)
    store.init()
    a = store.ingest_bytes(b"same")
    b = store.ingest_bytes(b"same")
    assert a == b == "sha256:" + __import__("hashlib").sha256(b"same").hexdigest()
    assert store.read_blob(a) == b"same"
    assert len(list(store.blobs_dir.iterdir())) == 1


def test_add_image_lists_names_and_moves_tags(tmp_path):
    store = Store(tmp_path)
    store.init()
    d1, c1, _ = _image(store, b"one", "docker.io/library/a:latest")
    d2, _, _ = _image(store, b"two", "docker.io/library/a:latest")  # the tag moves to the new image
    images = {i.manifest_digest: i for i in store.images()}
    assert images[d2].tags == ["docker.io/library/a:latest"]
    assert images[d1].tags == [] and images[d1].digests == [f"docker.io/library/a@{d1}"]
    assert store.find(["docker.io/library/a:latest"]).manifest_digest == d2
    assert store.find([], id_prefix=c1.split(":")[1][:8]).manifest_digest == d1
    with pytest.raises(UnknownImageError, match="hpcbox images"):
        store.find(["docker.io/library/nope:latest"])



_component = st.from_regex(r"[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?", fullmatch=True)
_host = st.one_of(st.just(""), st.just("localhost"), st.just("localhost:5000"), st.just("127.0.0.1:41131"),
                  st.just("docker.io"), st.just("index.docker.io"), st.just("registry-1.docker.io"),
                  st.just("ghcr.io"), st.just("quay.example.org:8443"), st.just("myhost"))
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True)
_digest = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)


@st.composite
def references(draw) -> str:
    host = draw(_host)
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=3)))
    name = f"{host}/{path}" if host else path
    tag, digest = draw(st.one_of(st.tuples(_tag, st.none()), st.tuples(st.none(), _digest)))
    return f"{name}:{tag}" if tag else f"{name}@{digest}"


@settings(max_examples=300, deadline=None)
@given(references())
def test_a_canonical_name_is_its_own_canonical_form(text):
    """What the fast path of find() relies on: the names the store holds (canonical_names' results) come
    back unchanged when typed, so looking them up without parsing gives the parsed answer."""
    names = lookup.canonical_names(text)
    assert len(names) == 1
    assert lookup.canonical_names(names[0]) == names
    assert storefiles.qualified(names[0])


@st.composite
def typed_names(draw) -> str:
    """Names as users type them: with or without a registry host, a tag, a digest, or neither."""
    host = draw(_host)
    path = "/".join(draw(st.lists(_component, min_size=1, max_size=3)))
    name = f"{host}/{path}" if host else path
    tag, digest = draw(st.tuples(st.one_of(st.none(), _tag), st.one_of(st.none(), _digest)))
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@settings(max_examples=300, deadline=None)
@given(typed_names())
def test_a_short_docker_hub_name_expands_as_the_parser_expands_it(text):
    """find()'s second fast path: where storefiles.familiar expands a name, the parser gives that name too."""
    expanded = storefiles.familiar(text)
    if expanded is not None:
        assert expanded in lookup.canonical_names(text)
        assert storefiles.qualified(expanded)


def test_typed_names_find_what_the_parsed_names_find(tmp_path):
    store = Store(tmp_path)
    store.init()
    busybox = _image(store, b"one", "docker.io/library/busybox:1")[0]
    local = _image(store, b"two", "127.0.0.1:5000/bench/app:2")[0]
    latest = _image(store, b"three", "docker.io/library/busybox:latest")[0]
    user = _image(store, b"four", "docker.io/someone/tool:latest")[0]
    for text, want in [("busybox", latest), ("someone/tool", user), ("busybox:latest", latest),
                       ("busybox:1", busybox), ("docker.io/busybox:1", busybox),
                       ("docker.io/library/busybox:1", busybox),
                       ("index.docker.io/library/busybox:1", busybox), ("127.0.0.1:5000/bench/app:2", local),
                       (f"127.0.0.1:5000/bench/app@{local}", local), (local.split(":")[1][:12], local)]:
        assert lookup.find(store, text).manifest_digest == want, text
        names = lookup.canonical_names(text) if "/" in text or ":" in text else []
        if names:
            assert store.find(names).manifest_digest == want, text
    for text in ("127.0.0.1:5000/bench/app:3", "127.0.0.1:5000/bench/app", "busybox:2"):
        with pytest.raises(UnknownImageError):
            lookup.find(store, text)


@pytest.mark.parametrize("typed, stored", [("127.0.0.1:5000/bench/app:2", "127.0.0.1:5000/bench/app:2"),
                                           ("app", "docker.io/library/app:latest"),
                                           ("bench/app:2", "docker.io/bench/app:2")])
def test_an_exactly_typed_name_is_found_without_the_registry_package(tmp_path, typed, stored):
    """The fast paths: `hpcbox run --rm 127.0.0.1:5000/x:1` (the stored name) or `hpcbox run --rm
    alpine` (a Docker Hub short name) does not import hpcbox_registry (~8 ms)."""
    store = Store(tmp_path)
    store.init()
    digest = _image(store, b"one", stored)[0]
    code = ("import sys\nfrom hpcbox.store import Store, lookup\n"
            f"image = lookup.find(Store({str(store.home)!r}), sys.argv[1])\n"
            "print(image.manifest_digest, 'hpcbox_registry' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code, typed], capture_output=True, text=True, check=False)
    assert done.stdout.split() == [digest, "False"], done.stderr


def test_add_image_refuses_when_a_blob_is_missing(tmp_path):
    store = Store(tmp_path)
    store.init()
    missing = "sha256:" + "0" * 64
    with pytest.raises(StoreCorruptError, match="vanished"):
        store.add_image({"mediaType": "x", "digest": missing, "size": 1}, ["r/x:1"], [missing])
    assert store.images() == []


def test_tag_untag_and_delete(tmp_path):
    store = Store(tmp_path)
    store.init()
    digest, _, _ = _image(store, b"one", "docker.io/library/a:latest")
    image = store.images()[0]
    store.tag(image, "docker.io/library/b:1")
    assert set(store.images()[0].tags) == {"docker.io/library/a:latest", "docker.io/library/b:1"}
    _, removed = store.untag("docker.io/library/a:latest")
    assert not removed and store.images()[0].tags == ["docker.io/library/b:1"]
    _, removed = store.untag("docker.io/library/b:1")  # only the digest reference was left: image goes
    assert removed and store.images() == []
    _image(store, b"one", "docker.io/library/a:latest")
    store.delete(digest)
    assert store.images() == []


def test_gc_keeps_shared_blobs_until_no_image_needs_them(tmp_path):
    store = Store(tmp_path)
    store.init()
    d1, c1, layer = _image(store, b"shared", "r/one:1")
    store.tag(store.images()[0], "r/two:1")
    store.ingest_bytes(b"orphan")
    removed = store.gc()
    assert [d for d, _ in removed] == ["sha256:" + __import__("hashlib").sha256(b"orphan").hexdigest()]
    store.untag("r/one:1")
    assert store.gc() == []  # r/two:1 still needs everything
    assert store.has_blob(layer)
    store.untag("r/two:1")
    assert {d for d, _ in store.gc()} == {d1, c1, layer}
    assert list(store.blobs_dir.iterdir()) == []


def test_gc_waits_for_running_pulls(tmp_path):
    store = Store(tmp_path)
    store.init()
    store.ingest_bytes(b"downloaded by a pull that has not committed yet")
    with store.gc_lock(shared=True):
        assert store.gc() is None
        assert store.clean_temp() is False
    assert len(store.gc()) == 1


def test_clean_temp_removes_leftovers(tmp_path):
    store = Store(tmp_path)
    store.init()
    (store.tmp_dir / ("sha256-" + "a" * 64 + ".partial")).write_bytes(b"half")
    (store.tmp_dir / ".tmp-xyz").write_bytes(b"half")
    (store.locks_dir / ("blob-" + "a" * 64 + ".lock")).touch()
    assert store.clean_temp() is True
    assert list(store.tmp_dir.iterdir()) == []
    assert [p.name for p in store.locks_dir.iterdir()] == ["gc.lock", "index.lock"]


def test_corrupt_index_is_reported_not_crashed(tmp_path):
    store = Store(tmp_path)
    store.init()
    store.index_path.write_text("{not json")
    with pytest.raises(StoreCorruptError, match="not valid JSON"):
        store.images()


def test_atomic_write_keeps_the_old_content_on_failure(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"old")

    class Boom(Exception):
        pass

    from hpcbox.store.atomic import atomic_writer

    with pytest.raises(Boom), atomic_writer(target) as handle:
        handle.write(b"new but unfinished")
        raise Boom
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


def test_file_lock_excludes_other_holders(tmp_path):
    path = tmp_path / "l"
    with FileLock(path):
        other = FileLock(path, blocking=False)
        with pytest.raises(LockBusy):
            other.acquire()
        with try_lock(path, shared=True) as got:
            assert got is False
    with FileLock(path, shared=True), try_lock(path, shared=True) as got:
        assert got is True


def _add_many(home: str, worker: int) -> None:
    store = Store(home)
    store.init()
    for i in range(15):
        _image(store, f"w{worker}-{i}".encode(), f"r/w{worker}:{i}")


def test_concurrent_index_updates_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    store = Store(tmp_path)
    tags = {t for image in store.images() for t in image.tags}
    assert tags == {f"r/w{w}:{i}" for w in range(4) for i in range(15)}
    index = json.loads(store.index_path.read_text())
    assert all(ANN_REF_NAME in e["annotations"] for e in index["manifests"])
    assert not [p for p in os.listdir(store.tmp_dir)]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=5000))
def test_the_digest_without_openssl_is_hashlibs(data):
    """sha256_digest uses CPython's built-in SHA-256, not hashlib (which loads OpenSSL, ~3.5 ms per
    start): the same digest."""
    import hashlib

    from hpcbox.store.layout import sha256_digest

    assert sha256_digest(data) == "sha256:" + hashlib.sha256(data).hexdigest()
