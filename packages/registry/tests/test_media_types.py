import pytest

from hpcbox_registry import media_types as mt


def test_kinds():
    assert mt.is_index(mt.OCI_INDEX) and mt.is_index(mt.DOCKER_MANIFEST_LIST)
    assert not mt.is_index(mt.OCI_MANIFEST)
    for kind in (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_V2, mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED):
        assert mt.is_manifest(kind)
    assert mt.is_manifest(mt.DOCKER_MANIFEST_V2 + "; charset=utf-8")
    assert not mt.is_manifest(mt.OCI_INDEX) and not mt.is_manifest(None)
    assert mt.is_schema1(mt.DOCKER_MANIFEST_V1_SIGNED) and not mt.is_schema1(mt.OCI_MANIFEST)


@pytest.mark.parametrize(
    ("media_type", "compression"),
    [
        (mt.OCI_LAYER_TAR, None),
        (mt.OCI_LAYER_GZIP, "gzip"),
        (mt.OCI_LAYER_ZSTD, "zstd"),
        (mt.DOCKER_LAYER_GZIP, "gzip"),
        (mt.DOCKER_LAYER_FOREIGN_GZIP, "gzip"),
        (mt.OCI_LAYER_NONDISTRIBUTABLE_ZSTD, "zstd"),
        (mt.OCI_LAYER_NONDISTRIBUTABLE_TAR, None),
        (mt.DOCKER_LAYER_TAR, None),
    ],
)
def test_layer_compression(media_type, compression):
    assert mt.is_layer(media_type)
    assert mt.layer_compression(media_type) == compression


def test_unknown_layer_type():
    with pytest.raises(ValueError, match="not a known layer"):
        mt.layer_compression("application/json")
    assert mt.is_nondistributable(mt.DOCKER_LAYER_FOREIGN_GZIP) and not mt.is_nondistributable(
        mt.OCI_LAYER_GZIP
    )
