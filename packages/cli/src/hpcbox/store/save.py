"""Save stored images as a docker-archive or an OCI archive (``hpcbox save``), streamed to a handle."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterable, List, Optional, Set, Tuple

from hpcbox_oci_bundle.mediatypes import OCI_INDEX, OCI_MANIFEST

from hpcbox.errors import EXIT_INTEGRITY
from hpcbox.store.archive import (
    _CHUNK,
    CONTAINERD_NAME,
    ArchiveError,
    _blob_name,
    _decompressed,
    compression_of,
    familiar,
    host_architecture,
)
from hpcbox.store.atomic import TEMP_PREFIX
from hpcbox.store.layout import ANN_REF_NAME, Image, Store


def _image_parts(store: Store, image: Image) -> Tuple[Dict[str, Any], bytes, str]:
    manifest = store.read_json_blob(image.manifest_digest, "manifest", image, discard=False)
    config_digest = (manifest.get("config") or {}).get("digest", "")
    store.read_json_blob(config_digest, "config", image, discard=False)  # checked: no damaged archive
    return manifest, store.read_blob(config_digest), config_digest


class _TarWriter:
    def __init__(self, handle: BinaryIO):
        self.tar = tarfile.open(fileobj=handle, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.seen: Set[str] = set()

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        info.mtime = 0
        return info

    def bytes(self, name: str, data: bytes) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def file(self, name: str, path: os.PathLike[str] | str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            with open(path, "rb") as handle:
                self.tar.addfile(self._info(name, os.fstat(handle.fileno()).st_size), handle)

    def dir(self, name: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            self.tar.addfile(info)

    def close(self) -> None:
        self.tar.close()


def save_archive(store: Store, images: List[Tuple[Image, List[str]]], handle: BinaryIO, fmt: str) -> None:
    """Write *images* (each with the names to record) as a docker-archive or an OCI archive."""
    writer = _TarWriter(handle)
    if fmt == "oci":
        _save_oci(store, images, writer)
    else:
        _save_docker(store, images, writer)
    writer.close()


def _save_oci(store: Store, images: List[Tuple[Image, List[str]]], writer: _TarWriter) -> None:
    writer.bytes("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    entries = []
    blobs: List[str] = []
    for image, names in images:
        manifest, _, config_digest = _image_parts(store, image)
        blobs += [image.manifest_digest, config_digest, *(d["digest"] for d in manifest.get("layers") or [])]
        base = {"mediaType": manifest.get("mediaType", OCI_MANIFEST), "digest": image.manifest_digest,
                "size": store.readable_blob_path(image.manifest_digest).stat().st_size}
        if image.platform:
            base["platform"] = image.platform
        for name in names or [None]:  # type: ignore[list-item]  # None: an entry without a name
            entry = dict(base)
            if name:
                entry["annotations"] = {ANN_REF_NAME: name, CONTAINERD_NAME: name}
            entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    writer.bytes("index.json", json.dumps(index, indent=2).encode())
    writer.dir("blobs")
    writer.dir("blobs/sha256")
    for digest in dict.fromkeys(blobs):
        writer.file(_blob_name(digest), store.readable_blob_path(digest))


def _save_docker(store: Store, images: List[Tuple[Image, List[str]]], writer: _TarWriter) -> None:
    entries = []
    repositories: Dict[str, Dict[str, str]] = {}
    for image, names in images:
        manifest, config_bytes, config_digest = _image_parts(store, image)
        config = json.loads(config_bytes)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layer_descs = manifest.get("layers") or []
        if len(diff_ids) != len(layer_descs):
            raise ArchiveError(f"image {image.id} has {len(layer_descs)} layers but {len(diff_ids)} diff_ids",
                               "run 'hpcbox verify' on it and pull it again", EXIT_INTEGRITY)
        config_name = config_digest.split(":", 1)[1] + ".json"
        writer.bytes(config_name, config_bytes)
        layer_names = []
        parent = None
        for i, (desc, diff_id) in enumerate(zip(layer_descs, diff_ids)):
            hexpart = diff_id.split(":", 1)[1]
            name = f"{hexpart}/layer.tar"
            layer_names.append(name)
            if name not in writer.seen:
                writer.dir(hexpart)
                writer.bytes(f"{hexpart}/VERSION", b"1.0")
                writer.bytes(f"{hexpart}/json", json.dumps(_v1_layer_json(hexpart, parent, config,
                                                                           i == len(diff_ids) - 1)).encode())
                _add_uncompressed(store, writer, name, store.readable_blob_path(desc["digest"]), diff_id)
            parent = hexpart
        tags = [familiar(n) for n in names if "@" not in n]
        entries.append({"Config": config_name, "RepoTags": tags, "Layers": layer_names})
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = layer_names[-1].split("/", 1)[0] if layer_names else ""
    writer.bytes("manifest.json", json.dumps(entries).encode())
    if repositories:
        writer.bytes("repositories", json.dumps(repositories).encode())


def _v1_layer_json(layer_id: str, parent: Optional[str], config: Dict[str, Any], top: bool) -> Dict[str, Any]:
    """The legacy per-layer ``json`` that `docker save` writes (older readers, e.g. udocker, need it)."""
    out = {"id": layer_id, "created": config.get("created") or "1970-01-01T00:00:00Z",
           "os": config.get("os", "linux")}
    if parent:
        out["parent"] = parent
    if top:
        out["architecture"] = config.get("architecture", host_architecture())
        out["config"] = config.get("config") or {}
    else:
        out["container_config"] = {}
    return out


def _add_uncompressed(store: Store, writer: _TarWriter, name: str, blob: Path, diff_id: str) -> None:
    with open(blob, "rb") as raw:
        head = raw.read(8)
    if compression_of(head) == "tar":
        writer.file(name, blob)
        return
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=store.tmp_dir)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, open(blob, "rb") as raw:
            stream, closer = _decompressed(raw)
            try:
                for chunk in iter(lambda: stream.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
            finally:
                if closer is not None:
                    closer.close()
        if "sha256:" + digest.hexdigest() != diff_id:
            raise ArchiveError(f"layer {blob.name} does not decompress to its diff_id {diff_id}",
                               "run 'hpcbox verify' and pull the image again", EXIT_INTEGRITY)
        writer.file(name, tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def names_for_save(image: Image, requested: Iterable[str]) -> List[str]:
    requested = list(requested)
    return [n for n in image.tags if n in requested] or list(image.tags)
