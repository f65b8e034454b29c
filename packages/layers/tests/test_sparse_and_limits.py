"""Sparse entries are written with holes; a layer that would expand beyond its limit, or an entry
bigger than the free space, stops with ExtractionLimitError and the entry is not left behind."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import zlib

import pytest

import hpcbox_layers
from hpcbox_layers import ExtractionLimitError, LayerError, apply_layers
from hpcbox_layers import apply as apply_module

GIB = 1 << 30
DATA = [(0, b"head" * 1024), (512 << 20, os.urandom(16 << 10)), (GIB - 4096, b"tail" * 1024)]


def _data(size: int):
    """Three runs of data in a file of *size* bytes: at its start, its middle and its end."""
    return [(0, DATA[0][1]), (size // 2, DATA[1][1]), (size - 4096, DATA[2][1])]


def _sparse_tar(tmp_path, fmt: str, size: int = GIB):
    if shutil.which("tar") is None:
        pytest.skip("needs GNU tar to write sparse members")
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big"
    with open(big, "wb") as f:
        f.truncate(size)
        for offset, data in _data(size):
            f.seek(offset)
            f.write(data)
    out = tmp_path / f"sparse-{fmt}.tar"
    subprocess.run(["tar", "--sparse", f"--format={fmt}", "-C", str(src), "-cf", str(out), "big"], check=True)
    assert out.stat().st_size < 1 << 20  # the tar holds the data, not the gigabyte
    return out


@pytest.mark.parametrize("fmt, size", [("gnu", GIB), ("posix", GIB), ("gnu", 10 * GIB)],
                         ids=["gnu-1GiB", "posix-1GiB", "gnu-10GiB"])
def test_a_sparse_gigabyte_is_written_with_holes(tmp_path, fmt, size):
    layer = _sparse_tar(tmp_path, fmt, size)
    report = apply_layers(tmp_path / "root", [layer])
    big = tmp_path / "root" / "big"
    st = big.stat()
    assert st.st_size == size
    assert st.st_blocks * 512 < 4 << 20  # disk usage near its ~25 KB of data, not 1 or 10 GiB
    with open(big, "rb") as f:
        for offset, data in _data(size):
            f.seek(offset)
            assert f.read(len(data)) == data
        f.seek(100 << 20)
        assert f.read(4096) == bytes(4096)  # a hole reads as zeros
    assert report.bytes_written < 1 << 20


def _zeros_layer(path, name: str, size: int) -> None:
    """A gzip tar with one file of *size* zero bytes, written in chunks (a ~1000:1 'bomb')."""
    info = tarfile.TarInfo(name)
    info.size = size
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as out:
        out.write(comp.compress(header))
        zeros = bytes(1 << 20)
        left = size + (-size % 512) + 1024  # data, padding, end of archive
        while left:
            n = min(left, len(zeros))
            out.write(comp.compress(zeros[:n]))
            left -= n
        out.write(comp.flush())


def test_a_layer_that_expands_beyond_its_limit_stops_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(apply_module, "_MIN_LIMIT", 1 << 20)
    layer = tmp_path / "bomb.tar.gz"
    _zeros_layer(layer, "zeros", 8 << 20)
    assert layer.stat().st_size < 64 << 10
    with pytest.raises(ExtractionLimitError) as err:
        apply_layers(tmp_path / "root", [layer], max_expansion=100)
    text = str(err.value)
    assert "layer 0 would write more than" in text and "'zeros'" in text and "\n" not in text
    assert "HPCBOX_MAX_LAYER_EXPANSION" in text
    assert not (tmp_path / "root" / "zeros").exists()
    # the same layer with the limit raised (or off) applies
    monkeypatch.setenv("HPCBOX_MAX_LAYER_EXPANSION", "0")
    apply_layers(tmp_path / "root2", [layer])
    assert (tmp_path / "root2" / "zeros").stat().st_size == 8 << 20


def test_the_limit_comes_from_the_environment_and_a_bad_value_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(apply_module, "_MIN_LIMIT", 1 << 20)
    layer = tmp_path / "bomb.tar.gz"
    _zeros_layer(layer, "zeros", 4 << 20)
    monkeypatch.setenv("HPCBOX_MAX_LAYER_EXPANSION", "10")
    with pytest.raises(ExtractionLimitError):
        apply_layers(tmp_path / "root", [layer])
    monkeypatch.setenv("HPCBOX_MAX_LAYER_EXPANSION", "lots")
    with pytest.raises(LayerError, match="is not a number"):
        apply_layers(tmp_path / "root", [layer])


def test_real_layers_stay_far_below_the_default_limit(tmp_path):
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        for i in range(50):
            data = (f"line {i} of a text file\n" * 2000).encode()  # text compresses well (~30x)
            info = tarfile.TarInfo(f"f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    layer = tmp_path / "text.tar.gz"
    layer.write_bytes(gzip.compress(payload.getvalue()))
    apply_layers(tmp_path / "root", [layer])
    assert len(os.listdir(tmp_path / "root")) == 50
    assert hpcbox_layers.DEFAULT_MAX_EXPANSION >= 100


def test_an_entry_bigger_than_the_free_space_is_refused_before_writing(tmp_path):
    small = os.environ.get("HPCBOX_TEST_SMALL_FS")
    if not small or not os.access(small, os.W_OK):
        pytest.skip("needs the small tmpfs of scripts/setup-debian (HPCBOX_TEST_SMALL_FS)")
    layer = tmp_path / "big.tar.gz"
    _zeros_layer(layer, "big", 80 << 20)  # more than the 8 MiB filesystem
    target = os.path.join(small, f"layers-{os.getpid()}")
    try:
        with pytest.raises(ExtractionLimitError, match="free some space"):
            apply_layers(target, [layer], max_expansion=0)
        assert os.listdir(target) == []
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_a_sparse_10_gib_entry_fits_on_a_small_filesystem(tmp_path):
    """Issue 16's attack: a 1 KB blob that would fill a quota'd filesystem. Its holes count neither
    against the free space nor against the layer's limit: 10 GiB land on 8 MiB as ~25 KB of data."""
    small = os.environ.get("HPCBOX_TEST_SMALL_FS")
    if not small or not os.access(small, os.W_OK):
        pytest.skip("needs the small tmpfs of scripts/setup-debian (HPCBOX_TEST_SMALL_FS)")
    layer = _sparse_tar(tmp_path, "gnu", 10 * GIB)
    target = os.path.join(small, f"layers-sparse-{os.getpid()}")
    try:
        apply_layers(target, [layer])
        st = os.stat(os.path.join(target, "big"))
        assert st.st_size == 10 * GIB and st.st_blocks * 512 < 1 << 20
    finally:
        shutil.rmtree(target, ignore_errors=True)
