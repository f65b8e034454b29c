"""Compression, media types, sources (paths and file objects) and damaged blobs."""

import bz2
import gzip
import io
import sys

import pytest
import zstandard
from hpcbox_oci_bundle import mediatypes as media
from layers_testkit import canonical, dir_, file, hardlink, snapshot_tree, symlink, tar_bytes

from hpcbox_layers import (
    CorruptLayerError,
    Layer,
    LayerError,
    UnsupportedMediaTypeError,
    apply_layers,
)
from hpcbox_layers import mediatypes as mt

ENTRIES = [
    dir_("etc", 0o755),
    file("etc/hostname", b"box\n", 0o644),
    file("big", bytes(range(256)) * 9000, 0o600),  # > 2 MB: several copy chunks
    symlink("etc/link", "/etc/hostname"),
    hardlink("etc/hard", "etc/hostname"),
]
TAR = tar_bytes(ENTRIES)


def gz(data):
    return gzip.compress(data, 1)


def zst(data):
    return zstandard.ZstdCompressor(level=1).compress(data)


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    target = tmp_path_factory.mktemp("ref") / "rootfs"
    apply_layers(target, [io.BytesIO(TAR)])
    assert (target / "big").read_bytes() == bytes(range(256)) * 9000
    return canonical(snapshot_tree(str(target)))


@pytest.mark.parametrize(
    ("blob", "media_type"),
    [
        (TAR, media.OCI_LAYER_TAR),
        (TAR, media.DOCKER_LAYER_TAR),
        (TAR, None),
        (gz(TAR), media.OCI_LAYER_GZIP),
        (gz(TAR), media.DOCKER_LAYER_GZIP),
        (gz(TAR), None),
        (gz(TAR[:3000]) + gz(TAR[3000:]), media.OCI_LAYER_GZIP),  # multi-member gzip
        (zst(TAR), media.OCI_LAYER_ZSTD),
        (zst(TAR), None),
        (zst(TAR[:5000]) + zst(TAR[5000:]), media.OCI_LAYER_ZSTD),  # several frames
        (TAR, media.OCI_LAYER_GZIP),  # mislabelled: the content decides, as in Docker
        (gz(TAR), media.OCI_LAYER_TAR + "; charset=binary"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
@pytest.mark.parametrize("as_path", [False, True], ids=["fileobj", "path"])
def test_every_format_and_source_gives_the_same_tree(tmp_path, expected, blob, media_type, as_path):
    if as_path:
        source = tmp_path / "blob"
        source.write_bytes(blob)
        source = str(source)
    else:
        source = io.BytesIO(blob)
    report = apply_layers(tmp_path / "rootfs", [Layer(source, media_type)])
    assert canonical(snapshot_tree(str(tmp_path / "rootfs"))) == expected
    assert report.entries == len(ENTRIES)
    assert report.bytes_written == 4 + 256 * 9000


def test_tuples_paths_and_raw_file_objects_are_accepted(tmp_path, expected):
    (tmp_path / "l.tar.gz").write_bytes(gz(TAR))
    with open(tmp_path / "l.tar.gz", "rb", buffering=0) as raw:
        apply_layers(tmp_path / "a", [(raw, media.OCI_LAYER_GZIP)])
        assert not raw.closed  # the caller's object stays open
    with open(tmp_path / "l.tar.gz", "rb") as buffered:
        apply_layers(tmp_path / "c", [buffered])
        assert not buffered.closed
    assert canonical(snapshot_tree(str(tmp_path / "c"))) == expected
    apply_layers(tmp_path / "b", [tmp_path / "l.tar.gz"])
    assert canonical(snapshot_tree(str(tmp_path / "a"))) == expected
    assert canonical(snapshot_tree(str(tmp_path / "b"))) == expected


def test_unknown_media_type_is_refused_before_anything_is_written(tmp_path):
    config = "application/vnd.oci.image.config.v1+json"
    with pytest.raises(UnsupportedMediaTypeError, match=r"application/vnd\.oci\.image\.config"):
        apply_layers(tmp_path / "t", [io.BytesIO(TAR), (io.BytesIO(TAR), config)])
    assert not (tmp_path / "t").exists()


def test_bzip2_content_is_unsupported_with_a_hint(tmp_path):
    with pytest.raises(UnsupportedMediaTypeError, match=r"bzip2.*gzip or zstd"):
        apply_layers(tmp_path / "t", [io.BytesIO(bz2.compress(TAR))])


@pytest.mark.parametrize(
    "blob",
    [
        gz(TAR)[: len(gz(TAR)) // 2],  # truncated gzip
        gz(TAR)[:-8] + b"\0\0\0\0" + gz(TAR)[-4:],  # wrong CRC
        zst(TAR)[:-100],  # truncated zstd
        TAR[:4000],  # truncated inside a member
        b"\x1f\x8b" + b"garbage" * 100,
        b"",
    ],
    ids=["gzip-truncated", "gzip-crc", "zstd-truncated", "tar-truncated", "gzip-garbage", "empty"],
)
def test_damaged_blobs_raise_corrupt_layer_error(tmp_path, blob):
    with pytest.raises(CorruptLayerError, match="layer 1") as info:
        apply_layers(tmp_path / "t", [io.BytesIO(TAR), io.BytesIO(blob)])
    assert info.value.layer_index == 1


def test_missing_path_and_wrong_types_say_what_is_wrong(tmp_path):
    with pytest.raises(LayerError, match=r"layer 0: cannot open .*nope"):
        apply_layers(tmp_path / "t", [tmp_path / "nope"])
    with pytest.raises(TypeError, match="layer 0: expected a Layer"):
        apply_layers(tmp_path / "t", [42])


def test_sniff():
    assert mt.sniff(b"\x1f\x8b\x08\x00") == mt.GZIP
    assert mt.sniff(b"\x28\xb5\x2f\xfd\x00") == mt.ZSTD
    assert mt.sniff(TAR[:8]) == mt.TAR
    with pytest.raises(UnsupportedMediaTypeError, match="xz"):
        mt.sniff(b"\xfd7zXZ\x00\x00")


@pytest.mark.parametrize("blob", [gz(TAR), gz(TAR[:3000]) + gz(TAR[3000:])], ids=["gzip", "multi-member"])
def test_gzip_without_isal_falls_back_to_zlib(tmp_path, expected, monkeypatch, blob):
    """Distributions without python-isal (Debian 12's .debs drop the dependency) still apply gzip."""
    monkeypatch.setitem(sys.modules, "isal", None)  # `from isal import ...` raises ImportError
    report = apply_layers(tmp_path / "rootfs", [Layer(io.BytesIO(blob), media.OCI_LAYER_GZIP)])
    assert canonical(snapshot_tree(str(tmp_path / "rootfs"))) == expected
    assert report.entries == len(ENTRIES)
    damaged = gz(TAR)[:-8] + b"\0\0\0\0" + gz(TAR)[-4:]
    with pytest.raises(CorruptLayerError, match="layer 0"):
        apply_layers(tmp_path / "bad", [io.BytesIO(damaged)])
