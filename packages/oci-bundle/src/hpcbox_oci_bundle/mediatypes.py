"""Media types of the OCI image and Docker registry specifications: the one place hpcbox spells them.

The registry client reads manifests by them, the CLI's store writes them into its OCI layout, and
the layers package picks a layer's decompression by them. They live here, in the one hpcbox package
with no dependencies at all, so that the registry (requests) and the layers package (isal,
zstandard) share them without depending on each other; ``hpcbox_registry.media_types`` re-exports
them under the registry's public name. Nothing here is imported by ``hpcbox_oci_bundle`` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional

# Manifests and indexes
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
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"  # containerd's name
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#: A plain tar labelled with its generic type; the layers package accepts it, registries do not serve it.
X_TAR = "application/x-tar"

INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
IMAGE_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST_V2, OCI_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_MANIFEST_TYPES | SCHEMA1_TYPES
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG})

GZIP, ZSTD = "gzip", "zstd"
#: every layer type -> the compression it announces (None: an uncompressed tar)
LAYER_COMPRESSION: Dict[str, Optional[str]] = {
    OCI_LAYER_TAR: None,
    OCI_LAYER_GZIP: GZIP,
    OCI_LAYER_ZSTD: ZSTD,
    OCI_LAYER_NONDISTRIBUTABLE_TAR: None,
    OCI_LAYER_NONDISTRIBUTABLE_GZIP: GZIP,
    OCI_LAYER_NONDISTRIBUTABLE_ZSTD: ZSTD,
    DOCKER_LAYER_TAR: None,
    DOCKER_LAYER_GZIP: GZIP,
    DOCKER_LAYER_ZSTD: ZSTD,
    DOCKER_LAYER_FOREIGN_GZIP: GZIP,
}
LAYER_TYPES = frozenset(LAYER_COMPRESSION)
NONDISTRIBUTABLE_TYPES = frozenset(
    {OCI_LAYER_NONDISTRIBUTABLE_TAR, OCI_LAYER_NONDISTRIBUTABLE_GZIP, OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
     DOCKER_LAYER_FOREIGN_GZIP}
)
#: the OCI layer type of a tar by its compression ("tar" or None: uncompressed)
OCI_LAYER_BY_COMPRESSION: Dict[Optional[str], str] = {
    None: OCI_LAYER_TAR, "tar": OCI_LAYER_TAR, GZIP: OCI_LAYER_GZIP, ZSTD: OCI_LAYER_ZSTD,
}
# Docker's layer types and their OCI equivalents (what `skopeo copy` writes into an OCI layout too)
_DOCKER_TO_OCI = {
    DOCKER_LAYER_TAR: OCI_LAYER_TAR,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_ZSTD: OCI_LAYER_ZSTD,
    DOCKER_LAYER_FOREIGN_GZIP: OCI_LAYER_NONDISTRIBUTABLE_GZIP,
}

#: The Accept header of a manifest request: every kind the registry client can read, best first.
MANIFEST_ACCEPT = ", ".join(
    [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST_V2, DOCKER_MANIFEST_V1_SIGNED,
     DOCKER_MANIFEST_V1]
)


def base(media_type: Optional[str]) -> str:
    """The media type without parameters (``; charset=utf-8``), lower case."""
    return (media_type or "").split(";", 1)[0].strip().lower()


def is_index(media_type: Optional[str]) -> bool:
    """True for a Docker manifest list or an OCI image index."""
    return base(media_type) in INDEX_TYPES


def is_manifest(media_type: Optional[str]) -> bool:
    """True for an image manifest: Docker schema2, OCI, or legacy schema1."""
    mt = base(media_type)
    return mt in IMAGE_MANIFEST_TYPES or mt in SCHEMA1_TYPES


def is_schema1(media_type: Optional[str]) -> bool:
    """True for the legacy Docker schema1 manifest (signed or not)."""
    return base(media_type) in SCHEMA1_TYPES


def is_layer(media_type: Optional[str]) -> bool:
    """True for a layer media type of the specifications (tar, tar+gzip, tar+zstd, Docker and foreign)."""
    return base(media_type) in LAYER_TYPES


def is_nondistributable(media_type: Optional[str]) -> bool:
    """True for foreign / non-distributable layers (their blobs may live at ``urls``)."""
    return base(media_type) in NONDISTRIBUTABLE_TYPES


def layer_compression(media_type: Optional[str]) -> Optional[str]:
    """``"gzip"``, ``"zstd"`` or ``None`` (uncompressed tar) for a layer media type.

    Raises ValueError for a media type that is not a known layer type.
    """
    mt = base(media_type)
    if mt not in LAYER_COMPRESSION:
        raise ValueError(
            f"{media_type!r} is not a known layer media type; expected a tar, tar+gzip or tar+zstd layer"
        )
    return LAYER_COMPRESSION[mt]


def as_oci(media_type: str) -> str:
    """The OCI equivalent of a Docker layer type; any other media type as it is."""
    return _DOCKER_TO_OCI.get(media_type, media_type)
