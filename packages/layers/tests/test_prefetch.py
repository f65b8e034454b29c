"""Layers given as paths are decompressed one layer ahead (hpcbox_layers.prefetch): the result, the
errors and their order must be those of applying the layers one by one."""

from __future__ import annotations

import gzip
import io
import os
import threading

import pytest
import zstandard
from layers_testkit import canonical, dir_, file, snapshot_tree, tar_bytes, whiteout

from hpcbox_layers import (
    CorruptLayerError,
    ExtractionLimitError,
    LayerError,
    UnsupportedMediaTypeError,
    apply_layers,
    prefetch,
)


def _layers(count=4, files=40, size=70_000):
    """Layers whose files cross many 1 MiB chunks, each replacing and whiting out the one below's."""
    out = []
    for n in range(count):
        entries = [dir_("d"), *(file(f"d/f{i}", bytes([65 + n]) * (size + i * 977)) for i in range(files))]
        if n:
            entries.append(whiteout(f"w{n - 1}"))
        entries.append(file(f"w{n}", b"x"))
        out.append(tar_bytes(entries))
    return out


def _write(tmp_path, blobs, compress=gzip.compress):
    paths = []
    for i, blob in enumerate(blobs):
        path = tmp_path / f"layer{i}"
        path.write_bytes(compress(blob))
        paths.append(path)
    return paths


def _threads():
    return [t for t in threading.enumerate() if t.name == "hpcbox-layers-prefetch"]


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.ZstdCompressor().compress, bytes])
@pytest.mark.parametrize("ahead", [prefetch.PREFETCH_BYTES, 1 << 20])
def test_paths_give_what_file_objects_give(tmp_path, monkeypatch, compress, ahead):
    monkeypatch.setattr(prefetch, "PREFETCH_BYTES", ahead)  # 1 MiB: the reader waits on the thread
    blobs = _layers()
    paths = _write(tmp_path, blobs, compress)
    one_by_one = apply_layers(tmp_path / "a", [io.BytesIO(compress(b)) for b in blobs])
    ahead_report = apply_layers(tmp_path / "b", paths)
    assert canonical(snapshot_tree(str(tmp_path / "b"))) == canonical(snapshot_tree(str(tmp_path / "a")))
    assert (ahead_report.entries, ahead_report.bytes_written, ahead_report.whiteouts) == (
        one_by_one.entries, one_by_one.bytes_written, one_by_one.whiteouts)
    assert ahead_report.bytes_written > 4 * (1 << 20)
    assert not _threads()


def test_a_missing_blob_fails_after_the_layers_below(tmp_path):
    paths = _write(tmp_path, _layers(2))
    paths.insert(1, tmp_path / "missing")
    with pytest.raises(LayerError, match=r"^layer 1: cannot open .*missing: No such file"):
        apply_layers(tmp_path / "t", paths)
    assert (tmp_path / "t" / "w0").exists() and not (tmp_path / "t" / "w1").exists()
    assert not _threads()


def test_a_damaged_blob_is_corrupt_at_its_layer(tmp_path):
    paths = _write(tmp_path, _layers(3))
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptLayerError) as info:
        apply_layers(tmp_path / "t", paths)
    assert info.value.layer_index == 2
    assert (tmp_path / "t" / "w1").exists()
    assert not _threads()


def test_an_unknown_compression_is_refused_at_its_layer(tmp_path):
    import bz2

    paths = _write(tmp_path, _layers(1))
    (tmp_path / "bz").mkdir()
    paths += _write(tmp_path / "bz", [tar_bytes([file("z")])], bz2.compress)
    with pytest.raises(UnsupportedMediaTypeError):
        apply_layers(tmp_path / "t", paths)
    assert (tmp_path / "t" / "w0").exists()
    assert not _threads()


def test_a_failing_layer_stops_the_prefetch_of_the_next(tmp_path):
    paths = _write(tmp_path, [tar_bytes([file("../escape")]), *_layers(1, files=200)])
    with pytest.raises(LayerError):
        apply_layers(tmp_path / "t", paths)
    assert not _threads()
    assert not (tmp_path / "escape").exists()
    assert os.listdir(tmp_path / "t") == []


def test_the_extraction_limit_holds_for_a_layer_decompressed_ahead(tmp_path):
    """The second layer is read through a Prefetch: its budget still comes from its own blob."""
    import tarfile

    header = tarfile.TarInfo("huge")
    header.size = 300 << 20  # above the 256 MiB floor; the data never needs to be there
    bomb = header.tobuf(format=tarfile.PAX_FORMAT) + bytes(1 << 20)
    paths = _write(tmp_path, [tar_bytes([file("ok", b"x")]), bomb])
    with pytest.raises(ExtractionLimitError) as info:
        apply_layers(tmp_path / "t", paths, max_expansion=100)
    assert info.value.layer_index == 1
    assert not (tmp_path / "t" / "huge").exists() or (tmp_path / "t" / "huge").stat().st_size == 0
    assert (tmp_path / "t" / "ok").exists()
    assert not _threads()
