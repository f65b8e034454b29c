"""Images in and out of the store as archives: import a rootfs tar, load docker-archive and OCI
archives (saving them is :mod:`hpcbox.store.save`; verifying stored images :mod:`hpcbox.store.verify`,
protecting them :mod:`hpcbox.store.protect`).

Everything that enters the store goes through :func:`_ingest` (copied to ``tmp/`` while hashing, renamed
into ``blobs/``) while the store's gc lock is held shared, and becomes visible only when the index entry
is committed under the index lock: an interrupted load leaves no listed image.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform as _platform
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, ContextManager, Dict, List, Optional, Tuple, cast

from hpcbox_oci_bundle.mediatypes import (
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    as_oci,
)
from hpcbox_oci_bundle.mediatypes import OCI_LAYER_BY_COMPRESSION as LAYER_TYPES

from hpcbox.errors import EXIT_INTEGRITY, EXIT_USAGE, HpcboxError
from hpcbox.store.atomic import TEMP_PREFIX, atomic_write_json, fsync_dir
from hpcbox.store.layout import ANN_CONFIG_DIGEST, ANN_CREATED, ANN_REF_NAME, ANN_SIZE, Store

CONTAINERD_NAME = "io.containerd.image.name"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CHUNK = 1 << 20
_LAST_NEW: Dict[str, bool] = {}  # digest -> whether this process's last _ingest of it added the blob


class ArchiveError(HpcboxError):
    def __init__(self, problem: str, fix: str, code: int = EXIT_USAGE):
        super().__init__(problem, fix, code)


def host_architecture() -> str:
    machine = _platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def compression_of(head: bytes) -> str:
    from hpcbox_layers.mediatypes import sniff

    return sniff(head)


def _decompressed(raw: BinaryIO) -> Tuple[BinaryIO, Optional[BinaryIO]]:
    from hpcbox_layers.mediatypes import open_stream

    return open_stream(raw, None)


def _hash_stream(stream: BinaryIO) -> Tuple[str, int]:
    digest = hashlib.sha256()
    total = 0
    for chunk in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(chunk)
        total += len(chunk)
    return "sha256:" + digest.hexdigest(), total


def diff_id_of(path: os.PathLike[str] | str) -> str:
    """sha256 of the uncompressed tar of a layer blob."""
    with open(path, "rb") as raw:
        stream, closer = _decompressed(raw)
        try:
            return _hash_stream(stream)[0]
        finally:
            if closer is not None:
                closer.close()


def _ingest(store: Store, stream: BinaryIO, expect: Optional[str] = None) -> Tuple[str, int, str]:
    """Copy *stream* into a blob; returns (digest, size, compression). Checks *expect* if given."""
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=store.tmp_dir)
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                if len(head) < 8:
                    head += chunk[:8]
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        name = "sha256:" + digest.hexdigest()
        if expect is not None and name != expect:
            raise ArchiveError(f"blob {expect} in the archive has digest {name}",
                               "the archive is damaged; make it again", EXIT_INTEGRITY)
        os.chmod(tmp, 0o644)
        if store.blob_intact(name, size):  # a stored copy of another size is damaged: replaced below
            os.unlink(tmp)
            _LAST_NEW[name] = False
        else:
            os.replace(tmp, store.blob_path(name))
            fsync_dir(store.blobs_dir)
            _LAST_NEW[name] = True
        return name, size, compression_of(head)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _commit(store: Store, manifest: Dict[str, Any], config: Dict[str, Any], names: List[str], *,
            blobs: List[str], sizes: int) -> Tuple[str, str]:
    """Write the manifest blob and point *names* (or an unnamed entry) at it. Returns (manifest, config)."""
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest = store.ingest_bytes(data)
    plat = {"architecture": config.get("architecture") or host_architecture(),
            "os": config.get("os") or "linux"}
    if config.get("variant"):
        plat["variant"] = config["variant"]
    descriptor = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(data),
                  "annotations": {ANN_CONFIG_DIGEST: manifest["config"]["digest"],
                                  ANN_SIZE: str(sizes + len(data)),
                                  ANN_CREATED: str(config.get("created") or "")},
                  "platform": plat}
    if names:
        store.add_image(descriptor, names, [digest, *blobs])
    else:
        with store.index_lock():
            missing = [d for d in blobs if not store.has_blob(d)]
            if missing:
                raise ArchiveError(f"blob {missing[0]} vanished before the commit", "load the image again", 6)
            index = store.read_index()
            if not any(e.get("digest") == digest for e in index["manifests"]):
                index["manifests"].append(descriptor)
                atomic_write_json(store.index_path, index, temp_dir=store.tmp_dir)
    return digest, manifest["config"]["digest"]


def canonical_name(text: str) -> str:
    from hpcbox.store import lookup

    try:
        names = lookup.canonical_names(text)
    except Exception:
        raise ArchiveError(f"invalid image name {text!r}",
                           "write it as [REGISTRY/]REPOSITORY[:TAG]") from None
    tagged = [n for n in names if "@" not in n]
    if not tagged:
        raise ArchiveError(f"image name {text!r} has a digest", "give a name with a tag, e.g. myimage:1.0")
    return tagged[0]


def familiar(name: str) -> str:
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


# -- import ------------------------------------------------------------------------------------------


def default_config(diff_ids: List[str], source: str) -> Dict[str, Any]:
    now = _now()
    return {"architecture": host_architecture(), "os": "linux", "created": now,
            "config": {"Env": [DEFAULT_PATH], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": now, "created_by": f"hpcbox import {source}"}]}


def _check_tar(path: Path, compression: str, source: str) -> str:
    """The diff_id of a layer file, after checking that it holds a tar archive."""
    with open(path, "rb") as raw:
        stream, closer = _decompressed(raw)
        try:
            head = stream.read(512)
            try:
                tarfile.TarInfo.frombuf(head, "utf-8", "surrogateescape")
            except tarfile.HeaderError:
                if head.strip(b"\0") or not head:
                    raise ArchiveError(f"{source} is not a tar archive",
                                       "give a tar of a root filesystem (plain, gzip or zstd)") from None
            digest = hashlib.sha256(head)
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
            return "sha256:" + digest.hexdigest()
        finally:
            if closer is not None:
                closer.close()


def _open_source(path: str) -> ContextManager[BinaryIO]:
    if path == "-":
        return contextlib.nullcontext(os.fdopen(os.dup(0), "rb"))
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ArchiveError(f"no file {path!r}", "check the path") from None
    except IsADirectoryError:
        raise ArchiveError(f"{path!r} is a directory", "give a tar file") from None


def import_rootfs(store: Store, path: str, image_name: str) -> Tuple[str, str]:
    """A single-layer image from a rootfs tar (plain, gzip or zstd). Returns (name, config digest)."""
    name = canonical_name(image_name)
    store.init()
    with store.gc_lock(shared=True):
        with _open_source(path) as source:
            digest, size, compression = _ingest(store, source)
        try:
            diff_id = _check_tar(store.blob_path(digest), compression, path)
        except BaseException:
            if _LAST_NEW.get(digest):  # the blob we just added is referenced by nothing: take it back
                with contextlib.suppress(OSError):
                    store.blob_path(digest).unlink()
            raise
        config = default_config([diff_id], os.path.basename(path) if path != "-" else "stdin")
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = store.ingest_bytes(config_bytes)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                    "layers": [{"mediaType": LAYER_TYPES[compression], "digest": digest, "size": size}]}
        _commit(store, manifest, config, [name], blobs=[config_digest, digest],
                sizes=size + len(config_bytes))
    return name, config_digest


# -- load --------------------------------------------------------------------------------------------


class _Archive:
    """A tar archive read by member name (``./`` prefixes ignored); stdin is spooled to a temp file."""

    def __init__(self, store: Store, path: str):
        self._spool: Optional[str] = None
        if path == "-":
            store.tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, self._spool = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=store.tmp_dir)
            with os.fdopen(fd, "wb") as out, os.fdopen(os.dup(0), "rb") as inp:
                shutil.copyfileobj(inp, out, _CHUNK)
            path = self._spool
        if not os.path.exists(path):
            raise ArchiveError(f"no file {path!r}", "check the path")
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
        except (tarfile.TarError, OSError, EOFError) as exc:
            self.close()
            why = (exc.strerror or "cannot be read") if isinstance(exc, OSError) and exc.errno else (
                "not a tar, tar.gz, tar.bz2 or tar.xz file")
            raise ArchiveError(f"{path} is not a readable tar archive ({why})",
                               "give a file made by 'docker save', 'hpcbox save' or 'skopeo copy'") from None
        self.members: Dict[str, tarfile.TarInfo] = {}
        for info in self.tar.getmembers():
            name = info.name
            while name.startswith("./"):
                name = name[2:]
            self.members[name.rstrip("/")] = info

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> BinaryIO:
        info = self.members.get(name)
        stream = self.tar.extractfile(info) if info is not None else None
        if stream is None:
            raise ArchiveError(f"the archive has no file {name!r}", "the archive is damaged; make it again",
                               EXIT_INTEGRITY)
        return stream  # type: ignore[return-value]  # tarfile's reader is a binary file

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.open(name).read())
        except ValueError as exc:
            raise ArchiveError(f"{name} in the archive is not JSON ({exc})", "the archive is damaged",
                               EXIT_INTEGRITY) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.tar.close()
        if self._spool:
            with contextlib.suppress(OSError):
                os.unlink(self._spool)


def load_archive(store: Store, path: str) -> List[Tuple[List[str], str]]:
    """Load a docker-archive or OCI archive (detected); returns [(names, config digest)] per image."""
    store.init()
    archive = _Archive(store, path)
    try:
        with store.gc_lock(shared=True):
            if archive.has("manifest.json"):
                return _load_docker(store, archive)
            if archive.has("oci-layout") and archive.has("index.json"):
                return _load_oci(store, archive)
            raise ArchiveError(f"{path} is neither a docker-archive (manifest.json) nor an OCI archive "
                               "(oci-layout, index.json)",
                               "give a file made by 'docker save', 'hpcbox save' or 'skopeo copy'")
    finally:
        archive.close()


def _load_docker(store: Store, archive: _Archive) -> List[Tuple[List[str], str]]:
    entries = archive.json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError("manifest.json of the archive lists no image", "the archive is damaged",
                           EXIT_INTEGRITY)
    loaded = []
    for entry in entries:
        config_bytes = archive.open(entry["Config"]).read()
        config = json.loads(config_bytes)
        config_digest = store.ingest_bytes(config_bytes)
        diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        layer_names = list(entry.get("Layers") or [])
        if len(diff_ids) != len(layer_names):
            raise ArchiveError(f"image config lists {len(diff_ids)} layers, manifest.json {len(layer_names)}",
                               "the archive is damaged", EXIT_INTEGRITY)
        layers: List[Dict[str, Any]] = []
        total = len(config_bytes)
        for name, diff_id in zip(layer_names, diff_ids):
            digest, size, compression = _ingest(store, archive.open(name))
            actual = digest if compression == "tar" else diff_id_of(store.blob_path(digest))
            if actual != diff_id:
                raise ArchiveError(f"layer {name} has diff_id {actual}, the config says {diff_id}",
                                   "the archive is damaged; make it again", EXIT_INTEGRITY)
            layers.append({"mediaType": LAYER_TYPES[compression], "digest": digest, "size": size})
            total += size
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
                    "layers": layers}
        names = [canonical_name(t) for t in entry.get("RepoTags") or []]
        _commit(store, manifest, config, names, blobs=[config_digest, *(d["digest"] for d in layers)],
                sizes=total)
        loaded.append((names, config_digest))
    return loaded


def _oci_names(annotations: Dict[str, str]) -> List[str]:
    full = annotations.get(CONTAINERD_NAME)
    if full:
        return [canonical_name(full)]
    ref = annotations.get(ANN_REF_NAME)
    if ref and ("/" in ref or ":" in ref):
        return [canonical_name(ref)]
    return []  # a bare tag ("latest") names no repository


def _pick_platform(index: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    arch = host_architecture()
    for desc in index.get("manifests") or []:
        p = desc.get("platform") or {}
        if p.get("architecture") == arch and p.get("os", "linux") == "linux":
            return cast(Dict[str, Any], desc)
    return None


def _load_oci(store: Store, archive: _Archive) -> List[Tuple[List[str], str]]:
    index = archive.json("index.json")
    loaded = []
    by_digest: Dict[str, List[str]] = {}
    order = []
    for desc in index.get("manifests") or []:
        digest = desc.get("digest", "")
        if desc.get("mediaType") in (OCI_INDEX, DOCKER_MANIFEST_LIST):
            nested = json.loads(_blob(archive, digest))
            chosen = _pick_platform(nested)
            if chosen is None:
                raise ArchiveError(f"the archive's index {digest} has no linux/{host_architecture()} image",
                                   "save the image for this platform", 3)
            digest = chosen["digest"]
        if digest not in by_digest:
            by_digest[digest] = []
            order.append(digest)
        for name in _oci_names(desc.get("annotations") or {}):
            if name not in by_digest[digest]:
                by_digest[digest].append(name)
    if not order:
        raise ArchiveError("index.json of the archive lists no image", "the archive is damaged",
                           EXIT_INTEGRITY)
    for digest in order:
        manifest = json.loads(_blob(archive, digest))
        config_desc = manifest.get("config") or {}
        config_bytes = _blob(archive, config_desc.get("digest", ""))
        config_digest = store.ingest_bytes(config_bytes)
        config = json.loads(config_bytes)
        layers: List[Dict[str, Any]] = []
        total = len(config_bytes)
        for desc in manifest.get("layers") or []:
            got, size, compression = _ingest(store, archive.open(_blob_name(desc.get("digest", ""))),
                                             expect=desc.get("digest"))
            media_type = as_oci(desc.get("mediaType") or "") or LAYER_TYPES[compression]
            layers.append({"mediaType": media_type, "digest": got, "size": size})
            total += size
        out = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
               "layers": layers}
        _commit(store, out, config, by_digest[digest], blobs=[config_digest, *(d["digest"] for d in layers)],
                sizes=total)
        loaded.append((by_digest[digest], config_digest))
    return loaded


def _blob_name(digest: str) -> str:
    alg, _, hexpart = digest.partition(":")
    if alg != "sha256" or len(hexpart) != 64:
        raise ArchiveError(f"unsupported digest {digest!r} in the archive", "only sha256 is supported",
                           EXIT_INTEGRITY)
    return f"blobs/sha256/{hexpart}"


def _blob(archive: _Archive, digest: str) -> bytes:
    data = archive.open(_blob_name(digest)).read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ArchiveError(f"blob {digest} in the archive does not match its digest",
                           "the archive is damaged; make it again", EXIT_INTEGRITY)
    return data
