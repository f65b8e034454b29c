"""A fake registry client with the methods of hpcbox_registry.RegistryClient the store uses.

It serves in-memory images, verifies like the real client (sha256 + size while writing, delete on
mismatch), resumes by appending to a partial file, and can be told to cut a download, corrupt a
blob, fill the disk or hang, so that the store's guarantees can be tested without a network.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis times each example (200 ms) and the data generation: on a loaded CI machine either may
# take ten times longer than here, which fails a test for no fault of the code. Not timed, then.
settings.register_profile("hpcbox-untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hpcbox-untimed")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer(files: Dict[str, bytes]) -> Tuple[bytes, bytes]:
    """(gzip blob, uncompressed tar) for a layer holding *files*, byte-for-byte reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), tar_bytes


@dataclass(frozen=True)
class FakeRef:
    registry: str
    repository: str
    tag: Optional[str] = "latest"
    digest: Optional[str] = None

    def with_digest(self, digest: str) -> FakeRef:
        return FakeRef(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        text += f":{self.tag}" if self.tag else ""
        return text + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class FakePlatform:
    os: str
    architecture: str
    variant: Optional[str] = None


@dataclass(frozen=True)
class FakeDescriptor:
    media_type: str
    digest: str
    size: int
    annotations: Dict[str, str] = field(default_factory=dict)
    platform: Optional[FakePlatform] = None
    urls: Tuple[str, ...] = ()


@dataclass
class FakeManifest:
    media_type: str
    digest: str
    raw: bytes
    data: dict


@dataclass
class FakeResolved:
    reference: FakeRef
    index: Optional[FakeManifest]
    manifest: FakeManifest
    config: bytes
    config_descriptor: FakeDescriptor
    layers: List[FakeDescriptor]
    platform: Optional[FakePlatform]


class FakeDigestMismatch(Exception):
    pass


class FakeCut(ConnectionError):
    """The connection dropped in the middle of a blob."""


@dataclass
class FakeImage:
    manifest: FakeManifest
    config: bytes
    layers: List[FakeDescriptor]
    platform: Optional[FakePlatform] = None
    index: Optional[FakeManifest] = None


class FakeRegistry:
    """Images by "repository:tag" and by "repository@digest"; blobs by digest."""

    def __init__(self) -> None:
        self.blobs: Dict[str, bytes] = {}
        self.images: Dict[str, FakeImage] = {}

    def add(self, repo: str, tag: str, layers: List[bytes], kind: str = "oci",
            config: Optional[dict] = None) -> FakeImage:
        layer_type = DOCKER_GZIP if kind == "docker" else OCI_GZIP
        descs = []
        for blob in layers:
            self.blobs[digest_of(blob)] = blob
            descs.append(FakeDescriptor(layer_type, digest_of(blob), len(blob)))
        config = dict(config or {"architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
                                 "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]}})
        if kind == "schema1":
            config.pop("rootfs", None)
            config_bytes = json.dumps(config, sort_keys=True).encode()
            descs = [FakeDescriptor(DOCKER_GZIP, d.digest, -1) for d in descs]
            data = {"schemaVersion": 1, "name": repo, "tag": tag,
                    "fsLayers": [{"blobSum": d.digest} for d in reversed(descs)]}
            raw = json.dumps(data).encode()
            manifest = FakeManifest(SCHEMA1, digest_of(raw), raw, data)
        else:
            config_bytes = json.dumps(config, sort_keys=True).encode()
            self.blobs[digest_of(config_bytes)] = config_bytes
            data = {"schemaVersion": 2,
                    "mediaType": DOCKER_MANIFEST if kind == "docker" else OCI_MANIFEST,
                    "config": {"mediaType": DOCKER_CONFIG if kind == "docker" else OCI_CONFIG,
                               "digest": digest_of(config_bytes), "size": len(config_bytes)},
                    "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size}
                               for d in descs]}
            raw = json.dumps(data, indent=1).encode()
            manifest = FakeManifest(data["mediaType"], digest_of(raw), raw, data)
        image = FakeImage(manifest, config_bytes, descs,
                          FakePlatform(config.get("os", "linux"), config.get("architecture", "amd64")))
        self.images[f"{repo}:{tag}"] = image
        self.images[f"{repo}@{manifest.digest}"] = image
        return image

    def add_index(self, repo: str, tag: str, platforms: Dict[str, FakeImage]) -> FakeManifest:
        data = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": img.manifest.digest, "size": len(img.manifest.raw),
             "platform": {"os": "linux", "architecture": arch}} for arch, img in platforms.items()]}
        raw = json.dumps(data).encode()
        index = FakeManifest(OCI_INDEX, digest_of(raw), raw, data)
        for arch, img in platforms.items():
            selected = FakeImage(img.manifest, img.config, img.layers, FakePlatform("linux", arch), index)
            self.images[f"{repo}:{tag}#{arch}"] = selected
            self.images[f"{repo}@{index.digest}#{arch}"] = selected
        return index


class FakeClient:
    """Duck-typed RegistryClient over a FakeRegistry, with fault injection."""

    def __init__(self, registry: FakeRegistry, log: Optional[Path] = None) -> None:
        self.registry = registry
        self.log = log  # one line "digest start" per fetch_blob call, appended across processes
        self.cut_after: Dict[str, int] = {}  # digest -> cut the connection after this many bytes (once)
        self.corrupt: set = set()
        self.enospc: set = set()
        self.hang: Dict[str, Path] = {}  # digest -> touch this file after half the blob, then hang
        self.resolves = 0

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def resolve(self, ref, platform=None) -> FakeResolved:
        self.resolves += 1
        key = f"{ref.repository}@{ref.digest}" if ref.digest else f"{ref.repository}:{ref.tag}"
        arch = platform.architecture if platform is not None else "amd64"
        image = self.registry.images.get(f"{key}#{arch}") or self.registry.images.get(key)
        if image is None:
            raise LookupError(f"manifest unknown: {key}")
        top = image.index or image.manifest
        config_desc = FakeDescriptor(OCI_CONFIG, digest_of(image.config), len(image.config))
        return FakeResolved(ref.with_digest(top.digest), image.index, image.manifest, image.config,
                            config_desc, list(image.layers), image.platform)

    def fetch_blob(self, ref, descriptor, dest_path, progress=None) -> None:
        data = self.registry.blobs[descriptor.digest]
        if descriptor.digest in self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        dest = Path(dest_path)
        start = dest.stat().st_size if dest.exists() else 0
        if self.log is not None:
            with open(self.log, "a") as handle:
                handle.write(f"{descriptor.digest} {start}\n")
        if descriptor.digest in self.enospc:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))
        with open(dest, "ab") as out:
            position = start
            for i in range(start, len(data), 1000):
                chunk = data[i:i + 1000]
                cut = self.cut_after.get(descriptor.digest)
                if cut is not None and position + len(chunk) > cut:
                    out.write(chunk[: cut - position])
                    del self.cut_after[descriptor.digest]
                    raise FakeCut(f"connection cut at byte {cut}")
                if descriptor.digest in self.hang and position >= len(data) // 2:
                    out.flush()
                    self.hang[descriptor.digest].touch()
                    while True:
                        time.sleep(1)
                out.write(chunk)
                position += len(chunk)
                if progress:
                    progress(len(chunk))
        have = dest.read_bytes()
        if digest_of(have) != descriptor.digest or (descriptor.size >= 0 and len(have) != descriptor.size):
            dest.unlink()
            raise FakeDigestMismatch(f"digest mismatch for {descriptor.digest}")


@pytest.fixture
def fake_registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def layers():
    """Three gzip layers; the second is big enough for several progress steps."""
    out = []
    for i, size in enumerate((100, 50_000, 3000)):
        blob, _ = make_layer({f"file{i}": os.urandom(size)})
        out.append(blob)
    return out


@pytest.fixture
def helpers():
    class H:
        FakeRef = FakeRef
        FakeClient = FakeClient
        FakePlatform = FakePlatform
        FakeDigestMismatch = FakeDigestMismatch
        FakeCut = FakeCut
        make_layer = staticmethod(make_layer)
        digest_of = staticmethod(digest_of)

    return H


@pytest.fixture
def cli(tmp_path, monkeypatch, fake_registry, capsys):
    """Run ``hpcbox --home <tmp> ARGS`` in-process with the fake client; returns (code, out, err).
    ``cli.client`` is the fake client, ``cli.home`` the store directory, ``cli.store`` its Store.
    (The command's entry point: hpcbox.quick, which hands all but `run CONTAINER` to hpcbox.main.)"""
    from hpcbox import settings
    from hpcbox.quick import main
    from hpcbox.store import Store

    client = FakeClient(fake_registry, log=tmp_path / "fetch.log")
    monkeypatch.setattr(settings, "client", lambda args: client)
    monkeypatch.delenv("HPCBOX_DEBUG", raising=False)
    home = tmp_path / "home"

    def run(*args):
        try:
            code = main(["--home", str(home), *args])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    run.client = client
    run.home = home
    run.store = Store(home)
    return run


@pytest.fixture(autouse=True)
def _release_signal_holds():
    """`hpcbox run` keeps batch signals held until its process exits; in-process tests go on."""
    yield
    from hpcbox.commands.run import release_signal_holds

    release_signal_holds()
