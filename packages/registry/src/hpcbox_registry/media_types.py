"""Media types of the Docker Registry v2 and OCI image specifications, and helpers about them."""

from __future__ import annotations

from typing import Optional

# Manifests
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

# Image configs
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

# Layers
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE_TAR = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
IMAGE_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST_V2, OCI_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_MANIFEST_TYPES | SCHEMA1_TYPES

_GZIP_LAYERS = frozenset(
    {OCI_LAYER_GZIP, OCI_LAYER_NONDISTRIBUTABLE_GZIP, DOCKER_LAYER_GZIP, DOCKER_LAYER_FOREIGN_GZIP}
)
_ZSTD_LAYERS = frozenset({OCI_LAYER_ZSTD, OCI_LAYER_NONDISTRIBUTABLE_ZSTD})
_PLAIN_LAYERS = frozenset({OCI_LAYER_TAR, OCI_LAYER_NONDISTRIBUTABLE_TAR, DOCKER_LAYER_TAR})
LAYER_TYPES = _GZIP_LAYERS | _ZSTD_LAYERS | _PLAIN_LAYERS
NONDISTRIBUTABLE_TYPES = frozenset(
    {
        OCI_LAYER_NONDISTRIBUTABLE_TAR,
        OCI_LAYER_NONDISTRIBUTABLE_GZIP,
        OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
        DOCKER_LAYER_FOREIGN_GZIP,
    }
)

#: The Accept header of a manifest request: every kind this client can read, best first.
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        DOCKER_MANIFEST_V2,
        DOCKER_MANIFEST_V1_SIGNED,
        DOCKER_MANIFEST_V1,
    ]
)


def _base(media_type: Optional[str]) -> str:
    """The media type without parameters (``; charset=utf-8``), lower case."""
    return (media_type or "").split(";", 1)[0].strip().lower()


def is_index(media_type: Optional[str]) -> bool:
    """True for a Docker manifest list or an OCI image index."""
    return _base(media_type) in INDEX_TYPES


def is_manifest(media_type: Optional[str]) -> bool:
    """True for an image manifest: Docker schema2, OCI, or legacy schema1."""
    mt = _base(media_type)
    return mt in IMAGE_MANIFEST_TYPES or mt in SCHEMA1_TYPES


def is_schema1(media_type: Optional[str]) -> bool:
    """True for the legacy Docker schema1 manifest (signed or not)."""
    return _base(media_type) in SCHEMA1_TYPES


def is_layer(media_type: Optional[str]) -> bool:
    """True for a layer media type this client knows (tar, tar+gzip, tar+zstd, Docker and foreign)."""
    return _base(media_type) in LAYER_TYPES


def is_nondistributable(media_type: Optional[str]) -> bool:
    """True for foreign / non-distributable layers (their blobs may live at ``urls``)."""
    return _base(media_type) in NONDISTRIBUTABLE_TYPES


def layer_compression(media_type: Optional[str]) -> Optional[str]:
    """``"gzip"``, ``"zstd"`` or ``None`` (uncompressed tar) for a layer media type.

    Raises ValueError for a media type that is not a known layer type.
    """
    mt = _base(media_type)
    if mt in _GZIP_LAYERS:
        return "gzip"
    if mt in _ZSTD_LAYERS:
        return "zstd"
    if mt in _PLAIN_LAYERS:
        return None
    raise ValueError(
        f"{media_type!r} is not a known layer media type; expected a tar, tar+gzip or tar+zstd layer"
    )
