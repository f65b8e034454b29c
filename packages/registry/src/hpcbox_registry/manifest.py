"""Descriptors, manifests (all kinds) and the resolved image."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from hpcbox_registry import media_types as mt
from hpcbox_registry.errors import RegistryServerError, UnsupportedMediaTypeError
from hpcbox_registry.platform import Platform
from hpcbox_registry.reference import ImageReference


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:" + hashlib.new(algorithm, data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor. ``size`` is -1 when unknown (legacy schema1 layers)."""

    media_type: str
    digest: str
    size: int
    annotations: Dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    platform: Optional[Platform] = None
    urls: Tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Dict[str, Any], default_media_type: str = "") -> Descriptor:
        try:
            digest = data["digest"]
            size = int(data.get("size", -1))
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryServerError(
                f"malformed descriptor in manifest: {data!r:.200}", "the registry served a broken manifest"
            ) from exc
        plat = data.get("platform")
        return cls(
            media_type=data.get("mediaType") or default_media_type,
            digest=digest,
            size=size,
            annotations=dict(data.get("annotations") or {}),
            platform=Platform.from_dict(plat) if isinstance(plat, dict) else None,
            urls=tuple(data.get("urls") or ()),
        )

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        if self.urls:
            out["urls"] = list(self.urls)
        return out


def detect_media_type(content_type: Optional[str], data: Dict[str, Any]) -> str:
    """The manifest kind: the ``mediaType`` field, else the Content-Type header, else the shape."""
    declared = data.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    header = (content_type or "").split(";", 1)[0].strip()
    if header in mt.MANIFEST_TYPES:
        return header
    if data.get("schemaVersion") == 1:
        return mt.DOCKER_MANIFEST_V1_SIGNED if "signatures" in data else mt.DOCKER_MANIFEST_V1
    if "manifests" in data:
        return mt.OCI_INDEX
    if "config" in data and "layers" in data:
        return mt.OCI_MANIFEST
    return header or "application/octet-stream"


def schema1_payload(raw: bytes) -> bytes:
    """The signed payload of a schema1 prettyjws manifest (what its digest covers); ``raw`` if unsigned."""
    try:
        data = json.loads(raw)
        sig = data["signatures"][0]
        protected = json.loads(
            base64.urlsafe_b64decode(sig["protected"] + "=" * (-len(sig["protected"]) % 4))
        )
        length = int(protected["formatLength"])
        tail = base64.urlsafe_b64decode(protected["formatTail"] + "=" * (-len(protected["formatTail"]) % 4))
    except (ValueError, KeyError, IndexError, TypeError):
        return raw
    return raw[:length] + tail


@dataclass(frozen=True)
class Manifest:
    """A manifest as served: ``raw`` bytes, parsed ``data``, ``media_type`` and ``digest``."""

    media_type: str
    digest: str
    raw: bytes = field(repr=False)
    data: Dict[str, Any] = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_bytes(
        cls, raw: bytes, content_type: Optional[str] = None, digest: Optional[str] = None
    ) -> Manifest:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RegistryServerError(
                f"the manifest is not valid JSON ({exc})",
                "the registry served a broken manifest; retry or use another tag",
            ) from exc
        if not isinstance(data, dict):
            raise RegistryServerError(
                "the manifest is not a JSON object", "the registry served a broken manifest"
            )
        media_type = detect_media_type(content_type, data)
        if media_type not in mt.MANIFEST_TYPES:
            raise UnsupportedMediaTypeError(f"unsupported manifest media type {media_type!r}")
        if digest is None:
            digest = sha256_digest(schema1_payload(raw) if mt.is_schema1(media_type) else raw)
        return cls(media_type=media_type, digest=digest, raw=raw, data=data)

    @property
    def is_index(self) -> bool:
        return mt.is_index(self.media_type)

    @property
    def is_schema1(self) -> bool:
        return mt.is_schema1(self.media_type)

    @property
    def manifests(self) -> List[Descriptor]:
        """The entries of an index / manifest list (empty for an image manifest)."""
        if not self.is_index:
            return []
        return [Descriptor.from_dict(d) for d in self.data.get("manifests") or []]

    @property
    def config(self) -> Optional[Descriptor]:
        """The config descriptor of a schema2/OCI image manifest (None for an index or schema1)."""
        cfg = self.data.get("config")
        if self.is_index or self.is_schema1 or not isinstance(cfg, dict):
            return None
        return Descriptor.from_dict(cfg, mt.OCI_CONFIG)

    @property
    def layers(self) -> List[Descriptor]:
        """Layers in application order (base first); schema1's are reversed and empty ones skipped."""
        if self.is_index:
            return []
        if self.is_schema1:
            return schema1_layers(self.data)
        default = mt.DOCKER_LAYER_GZIP if self.media_type == mt.DOCKER_MANIFEST_V2 else mt.OCI_LAYER_GZIP
        return [Descriptor.from_dict(d, default) for d in self.data.get("layers") or []]


def _schema1_history(data: Dict[str, Any]) -> List[Dict[str, Any]]:
    out = []
    for entry in data.get("history") or []:
        try:
            out.append(json.loads(entry.get("v1Compatibility") or "{}"))
        except (ValueError, AttributeError):
            out.append({})
    return out


def schema1_layers(data: Dict[str, Any]) -> List[Descriptor]:
    """Layers of a schema1 manifest, base first, without the empty (``throwaway``) ones."""
    fs_layers = data.get("fsLayers") or []
    history = _schema1_history(data)
    layers = []
    for i in range(len(fs_layers) - 1, -1, -1):
        if i < len(history) and history[i].get("throwaway"):
            continue
        blob = fs_layers[i].get("blobSum")
        if not blob:
            raise RegistryServerError(
                "schema1 manifest has a layer without blobSum", "the manifest is broken"
            )
        layers.append(Descriptor(media_type=mt.DOCKER_LAYER_GZIP, digest=blob, size=-1))
    return layers


def schema1_config(data: Dict[str, Any]) -> bytes:
    """An image config synthesised from schema1 ``v1Compatibility`` (no ``rootfs.diff_ids``)."""
    history = _schema1_history(data)
    top = history[0] if history else {}
    config: Dict[str, Any] = {
        "architecture": top.get("architecture") or data.get("architecture") or "amd64",
        "os": top.get("os") or "linux",
        "config": top.get("config") or {},
        "rootfs": {"type": "layers"},
        "history": [],
    }
    if top.get("created"):
        config["created"] = top["created"]
    for entry in reversed(history):
        item: Dict[str, Any] = {}
        if entry.get("created"):
            item["created"] = entry["created"]
        cmd = (entry.get("container_config") or {}).get("Cmd")
        if cmd:
            item["created_by"] = " ".join(cmd)
        if entry.get("throwaway"):
            item["empty_layer"] = True
        config["history"].append(item)
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ResolvedImage:
    """An image ready to pull: its manifest, verified config and layers for one platform."""

    reference: ImageReference  # pinned to the top-level digest (index digest for multi-arch images)
    index: Optional[Manifest]
    manifest: Manifest
    config: bytes = field(repr=False)
    config_descriptor: Descriptor
    layers: List[Descriptor]
    platform: Optional[Platform]

    @property
    def config_data(self) -> Dict[str, Any]:
        data: Dict[str, Any] = json.loads(self.config)
        return data
