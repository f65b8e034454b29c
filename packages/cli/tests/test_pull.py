"""Pulling through a (fake) registry client: what gets stored, and what an interruption leaves."""

from __future__ import annotations

import gzip
import hashlib
import json
import multiprocessing
import os
import signal
import time

import pytest

from hpcbox.store import Store
from hpcbox.store.pull import PullProgress, pull_image

REG = "127.0.0.1:5000"


def _layout_is_consistent(store: Store) -> None:
    """Every listed image has all its blobs, and every blob's name is its sha256."""
    for entry in json.loads(store.index_path.read_text())["manifests"]:
        manifest = json.loads(store.read_blob(entry["digest"]))
        for desc in [manifest["config"], *manifest["layers"]]:
            assert store.has_blob(desc["digest"]), desc
    for path in store.blobs_dir.iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


class Recorder(PullProgress):
    def __init__(self):
        self.events = []

    def layer_start(self, digest, size, done):
        self.events.append(("start", digest, size, done))

    def layer_advance(self, digest, n):
        self.events.append(("advance", digest, n))

    def layer_done(self, digest, status):
        self.events.append(("done", digest, status))


def test_pull_oci_image_by_tag(tmp_path, fake_registry, layers, helpers):
    image = fake_registry.add("team/app", "1", layers)
    client = helpers.FakeClient(fake_registry)
    store = Store(tmp_path)
    progress = Recorder()
    result = pull_image(store, client, helpers.FakeRef(REG, "team/app", "1"), progress=progress)
    assert result.names == [f"{REG}/team/app:1", f"{REG}/team/app@{image.manifest.digest}"]
    assert result.manifest_digest == image.manifest.digest  # OCI manifests are stored as served
    assert result.downloaded == 3 and result.reused == 0
    stored = store.images()
    assert len(stored) == 1 and stored[0].names == result.names
    assert stored[0].platform == {"architecture": "amd64", "os": "linux"}
    assert stored[0].size == sum(len(b) for b in layers) + len(image.config) + len(image.manifest.raw)
    for blob in layers:
        assert store.read_blob(helpers.digest_of(blob)) == blob
    _layout_is_consistent(store)
    advanced = sum(e[2] for e in progress.events if e[0] == "advance")
    assert advanced == sum(len(b) for b in layers)
    assert sorted(e[2] for e in progress.events if e[0] == "done") == ["downloaded"] * 3
    assert list(store.tmp_dir.iterdir()) == []


def test_largest_layers_are_fetched_first(tmp_path, fake_registry, layers, helpers):
    """The pull lasts as long as its longest download: that one starts first."""
    fake_registry.add("team/app", "1", layers)
    progress = Recorder()
    pull_image(Store(tmp_path), helpers.FakeClient(fake_registry), helpers.FakeRef(REG, "team/app", "1"),
               progress=progress, workers=1)
    started = [e[1] for e in progress.events if e[0] == "start"]
    by_size = sorted(layers, key=len, reverse=True)
    assert started == [helpers.digest_of(b) for b in by_size]
    assert started != [helpers.digest_of(b) for b in layers]  # (the manifest's order differs)


def test_second_pull_reuses_blobs(tmp_path, fake_registry, layers, helpers):
    fake_registry.add("team/app", "1", layers)
    fake_registry.add("team/other", "1", layers[:2])
    log = tmp_path / "log"
    client = helpers.FakeClient(fake_registry, log=log)
    store = Store(tmp_path / "home")
    pull_image(store, client, helpers.FakeRef(REG, "team/app", "1"))
    result = pull_image(store, client, helpers.FakeRef(REG, "team/other", "1"))
    assert result.downloaded == 0 and result.reused == 2
    assert len(log.read_text().splitlines()) == 3
    assert len(store.images()) == 2


def test_pull_by_digest_stores_only_the_digest_name(tmp_path, fake_registry, layers, helpers):
    image = fake_registry.add("team/app", "1", layers)
    store = Store(tmp_path)
    ref = helpers.FakeRef(REG, "team/app", None, image.manifest.digest)
    result = pull_image(store, helpers.FakeClient(fake_registry), ref)
    assert result.names == [f"{REG}/team/app@{image.manifest.digest}"]
    assert store.images()[0].tags == []


def test_docker_schema2_is_stored_as_oci(tmp_path, fake_registry, layers, helpers):
    image = fake_registry.add("team/app", "d", layers, kind="docker")
    store = Store(tmp_path)
    result = pull_image(store, helpers.FakeClient(fake_registry), helpers.FakeRef(REG, "team/app", "d"))
    manifest = json.loads(store.read_blob(result.manifest_digest))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert manifest["config"]["digest"] == helpers.digest_of(image.config)  # same config bytes
    assert {layer["mediaType"] for layer in manifest["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"}
    assert result.source_digest == image.manifest.digest
    assert f"{REG}/team/app@{image.manifest.digest}" in store.images()[0].names


def test_index_pull_selects_platform_and_pins_the_index_digest(tmp_path, fake_registry, helpers):
    amd = fake_registry.add("multi", "x-amd", [helpers.make_layer({"a": b"amd64"})[0]])
    arm = fake_registry.add("multi", "x-arm", [helpers.make_layer({"a": b"arm64"})[0]],
                            config={"architecture": "arm64", "os": "linux"})
    index = fake_registry.add_index("multi", "1", {"amd64": amd, "arm64": arm})
    store = Store(tmp_path)
    result = pull_image(store, helpers.FakeClient(fake_registry), helpers.FakeRef(REG, "multi", "1"),
                        platform=helpers.FakePlatform("linux", "arm64"))
    assert result.manifest_digest == arm.manifest.digest
    assert result.platform == "linux/arm64"
    assert result.names[1] == f"{REG}/multi@{index.digest}"
    assert store.images()[0].platform == {"architecture": "arm64", "os": "linux"}


def test_schema1_gets_a_config_with_diff_ids(tmp_path, fake_registry, helpers):
    blobs = [helpers.make_layer({"base": b"1"}), helpers.make_layer({"top": b"2"})]
    fake_registry.add("old", "v1", [b for b, _ in blobs], kind="schema1")
    store = Store(tmp_path)
    result = pull_image(store, helpers.FakeClient(fake_registry), helpers.FakeRef(REG, "old", "v1"))
    config = json.loads(store.read_blob(result.config_digest))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [helpers.digest_of(t) for _, t in blobs]}
    manifest = json.loads(store.read_blob(result.manifest_digest))
    assert [layer["size"] for layer in manifest["layers"]] == [len(b) for b, _ in blobs]
    config_size = len(store.read_blob(result.config_digest))
    assert manifest["config"] == {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": result.config_digest, "size": config_size}
    _layout_is_consistent(store)


def test_digest_mismatch_stores_nothing(tmp_path, fake_registry, layers, helpers):
    fake_registry.add("team/app", "1", layers)
    client = helpers.FakeClient(fake_registry)
    client.corrupt.add(helpers.digest_of(layers[1]))
    store = Store(tmp_path)
    with pytest.raises(helpers.FakeDigestMismatch):
        pull_image(store, client, helpers.FakeRef(REG, "team/app", "1"))
    assert store.images() == []
    assert not store.has_blob(helpers.digest_of(layers[1]))
    assert not store.partial_path(helpers.digest_of(layers[1])).exists()


def test_cut_connection_leaves_nothing_listed_and_the_next_pull_resumes(tmp_path, fake_registry, layers,
                                                                        helpers):
    fake_registry.add("team/app", "1", layers)
    log = tmp_path / "log"
    client = helpers.FakeClient(fake_registry, log=log)
    big = helpers.digest_of(layers[1])
    client.cut_after[big] = 20_000
    store = Store(tmp_path / "home")
    with pytest.raises(helpers.FakeCut):
        pull_image(store, client, helpers.FakeRef(REG, "team/app", "1"), workers=1)
    assert store.images() == []
    assert store.partial_path(big).stat().st_size == 20_000
    pull_image(store, client, helpers.FakeRef(REG, "team/app", "1"))
    assert f"{big} 20000" in log.read_text().splitlines()  # resumed from the prefix, not from 0
    assert store.read_blob(big) == layers[1]
    _layout_is_consistent(store)
    assert list(store.tmp_dir.iterdir()) == []


def test_disk_full_removes_the_partial_and_lists_nothing(tmp_path, fake_registry, layers, helpers):
    fake_registry.add("team/app", "1", layers)
    client = helpers.FakeClient(fake_registry)
    client.enospc.add(helpers.digest_of(layers[2]))
    store = Store(tmp_path)
    with pytest.raises(OSError) as info:
        pull_image(store, client, helpers.FakeRef(REG, "team/app", "1"), workers=1)
    assert info.value.errno == 28
    assert store.images() == []
    assert not store.partial_path(helpers.digest_of(layers[2])).exists()


def _child_pull(home, client, ref):
    try:
        pull_image(Store(home), client, ref)
    except BaseException:
        os._exit(1)
    os._exit(0)


def test_eight_concurrent_pulls_store_each_blob_once(tmp_path, fake_registry, layers, helpers):
    image = fake_registry.add("team/app", "1", layers)
    log = tmp_path / "log"
    client = helpers.FakeClient(fake_registry, log=log)
    home = tmp_path / "home"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child_pull, args=(home, client, helpers.FakeRef(REG, "team/app", "1")))
             for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0] * 8
    fetched = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(fetched) == sorted(helpers.digest_of(b) for b in layers)  # each blob downloaded once
    store = Store(home)
    assert len(store.images()) == 1
    entries = json.loads(store.index_path.read_text())["manifests"]
    assert len(entries) == 2 and {e["digest"] for e in entries} == {image.manifest.digest}
    _layout_is_consistent(store)


def test_sigkill_mid_pull_leaves_old_state_and_next_pull_completes(tmp_path, fake_registry, layers, helpers):
    fake_registry.add("team/app", "1", layers)
    home = tmp_path / "home"
    store = Store(home)
    store.init()
    before = store.index_path.read_bytes()
    client = helpers.FakeClient(fake_registry)
    marker = tmp_path / "halfway"
    client.hang[helpers.digest_of(layers[1])] = marker
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_child_pull, args=(home, client, helpers.FakeRef(REG, "team/app", "1")))
    proc.start()
    while not marker.exists() and proc.is_alive():
        time.sleep(0.01)
    assert marker.exists()
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert store.index_path.read_bytes() == before
    assert store.images() == []
    partial = store.partial_path(helpers.digest_of(layers[1]))
    assert 0 < partial.stat().st_size < len(layers[1])
    client.hang.clear()
    pull_image(store, client, helpers.FakeRef(REG, "team/app", "1"))
    assert len(store.images()) == 1
    _layout_is_consistent(store)


def test_gzip_diff_id_handles_concatenated_members(tmp_path):
    from hpcbox.store.schema1 import diff_id

    path = tmp_path / "layer"
    path.write_bytes(gzip.compress(b"abc") + gzip.compress(b"def"))
    assert diff_id(path) == "sha256:" + hashlib.sha256(b"abcdef").hexdigest()
    path.write_bytes(b"plain tar bytes")
    assert diff_id(path) == "sha256:" + hashlib.sha256(b"plain tar bytes").hexdigest()


def test_a_bad_leftover_prefix_is_downloaded_again(tmp_path, fake_registry, layers, helpers):
    fake_registry.add("team/app", "1", layers)
    log = tmp_path / "log"
    client = helpers.FakeClient(fake_registry, log=log)
    store = Store(tmp_path / "home")
    store.init()
    big = helpers.digest_of(layers[1])
    store.partial_path(big).write_bytes(b"garbage that is not the blob's prefix")
    pull_image(store, client, helpers.FakeRef(REG, "team/app", "1"))
    starts = [line.split()[1] for line in log.read_text().splitlines() if line.startswith(big)]
    assert starts == ["37", "0"]  # resumed, failed verification, started over
    assert store.read_blob(big) == layers[1]
    _layout_is_consistent(store)


def test_a_bad_blob_without_leftover_is_not_retried(tmp_path, fake_registry, layers, helpers):
    fake_registry.add("team/app", "1", layers)
    log = tmp_path / "log"
    client = helpers.FakeClient(fake_registry, log=log)
    client.corrupt.add(helpers.digest_of(layers[0]))
    with pytest.raises(helpers.FakeDigestMismatch):
        pull_image(Store(tmp_path / "home"), client, helpers.FakeRef(REG, "team/app", "1"), workers=1)
    fetched = [line.split()[0] for line in log.read_text().splitlines()]
    assert fetched[-1] == helpers.digest_of(layers[0]) and fetched.count(fetched[-1]) == 1  # (largest first)
