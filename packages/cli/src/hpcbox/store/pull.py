"""Pull an image into the store through a registry client, so that any interruption is harmless.

Order of a pull: resolve (network only) → download every missing layer into ``tmp/`` under its
blob lock, rename it into ``blobs/`` once the client verified it → write config and manifest blobs
→ commit the names in ``index.json`` under the index lock. A pull killed before the commit leaves
no listed image (only blobs that the next pull reuses, or partial downloads that it resumes); a
pull killed after the commit has finished.

The client is anything with ``resolve(ref, platform)`` and ``fetch_blob(ref, desc, path, progress)``
as documented by ``hpcbox_registry.RegistryClient``.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from hpcbox_oci_bundle.mediatypes import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, as_oci

from hpcbox.store import schema1
from hpcbox.store.layout import (
    ANN_CONFIG_DIGEST,
    ANN_CREATED,
    ANN_SIZE,
    ANN_SOURCE_DIGEST,
    ANN_SOURCE_MEDIA_TYPE,
    Store,
)


class PullProgress:
    """Callbacks a pull reports to; the default does nothing. Methods may be called from threads."""

    def layer_start(self, digest: str, size: int, done: int) -> None:
        pass

    def layer_advance(self, digest: str, n_bytes: int) -> None:
        pass

    def layer_done(self, digest: str, status: str) -> None:
        """*status*: "downloaded" or "exists"."""


@dataclass
class PullResult:
    names: List[str]
    manifest_digest: str
    config_digest: str
    source_digest: str
    platform: Optional[str]
    downloaded: int
    reused: int


def _descriptor_dict(desc: Any, size: int) -> Dict[str, Any]:
    media_type = as_oci(desc.media_type)  # Docker layer types stored as their OCI equivalents (as skopeo)
    out = {"mediaType": media_type, "digest": desc.digest, "size": size}
    if getattr(desc, "annotations", None):
        out["annotations"] = dict(desc.annotations)
    if getattr(desc, "urls", None):
        out["urls"] = list(desc.urls)
    return out


def _platform_dict(platform: Any, config: Dict[str, Any]) -> Dict[str, Any]:
    if platform is not None:
        out = {"architecture": platform.architecture, "os": platform.os}
        if getattr(platform, "variant", None):
            out["variant"] = platform.variant
        return out
    out = {"architecture": config.get("architecture", "amd64"), "os": config.get("os", "linux")}
    if config.get("variant"):
        out["variant"] = config["variant"]
    return out


def _run_parallel(jobs: List[Callable[[], None]], workers: int) -> None:
    """Run *jobs* on daemon threads (an interrupted process never waits for them).

    Re-raises the first error; the jobs not yet started are dropped then.
    """
    if not jobs:
        return
    pending: queue.Queue[Callable[[], None]] = queue.Queue()
    for job in jobs:
        pending.put(job)
    errors: List[BaseException] = []
    failed = threading.Event()

    def worker() -> None:
        while not failed.is_set():
            try:
                job = pending.get_nowait()
            except queue.Empty:
                return
            try:
                job()
            except BaseException as exc:
                errors.append(exc)
                failed.set()

    threads = [threading.Thread(target=worker, daemon=True, name=f"hpcbox-pull-{i}")
               for i in range(max(1, min(workers, len(jobs))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # join with a timeout so that SIGINT reaches the main thread
            thread.join(0.2)
    if errors:
        raise errors[0]


def fetch_layer(store: Store, client: Any, ref: Any, desc: Any, progress: PullProgress) -> str:
    """Make blob *desc* present in the store; returns "downloaded" or "exists". A stored blob of the
    wrong size (truncated by a full disk or a crash of the filesystem) is fetched again."""
    digest = desc.digest
    size = int(desc.size)  # -1: unknown (legacy schema1 layers)
    if store.blob_intact(digest, size):
        progress.layer_done(digest, "exists")
        return "exists"
    with store.blob_lock(digest):  # one downloader per blob, across threads and processes
        if store.blob_intact(digest, size):
            progress.layer_done(digest, "exists")
            return "exists"
        partial = store.partial_path(digest)
        done = partial.stat().st_size if partial.exists() else 0
        if 0 <= size < done:
            partial.unlink()
            done = 0
        progress.layer_start(digest, size, done)
        try:
            client.fetch_blob(ref, desc, partial, progress=lambda n: progress.layer_advance(digest, n))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                with contextlib.suppress(OSError):
                    partial.unlink()  # give the space back; nothing to resume from a full disk
            raise
        except Exception as exc:
            if not done or "DigestMismatch" not in type(exc).__name__:
                raise
            # The leftover prefix was bad (e.g. written before a crash of the disk): start over once.
            with contextlib.suppress(OSError):
                partial.unlink()
            progress.layer_start(digest, size, 0)
            client.fetch_blob(ref, desc, partial, progress=lambda n: progress.layer_advance(digest, n))
        store.commit_partial(partial, digest, size if size >= 0 else None)
    progress.layer_done(digest, "downloaded")
    return "downloaded"


def pull_image(store: Store, client: Any, ref: Any, platform: Any = None, *,
               progress: Optional[PullProgress] = None, workers: int = 4) -> PullResult:
    """Pull *ref* (an ``ImageReference``) into *store*; see the module docstring for the guarantees."""
    progress = progress or PullProgress()
    store.init()
    with store.gc_lock(shared=True):
        resolved = client.resolve(ref, platform=platform)
        pinned = resolved.reference
        layers = list(resolved.layers)
        unique = list({d.digest: d for d in layers}.values())
        statuses: List[str] = []

        def job_for(desc: Any) -> Callable[[], None]:
            return lambda: statuses.append(fetch_layer(store, client, pinned, desc, progress))

        # largest first: the pull lasts as long as its longest download, which then starts at once
        # while the smaller ones fill the other workers (sizes of -1, unknown, go last)
        largest_first = sorted(unique, key=lambda d: -int(d.size))
        _run_parallel([job_for(d) for d in largest_first], workers)

        source = resolved.index if resolved.index is not None else resolved.manifest
        config_bytes = resolved.config
        sizes = {d.digest: store.blob_path(d.digest).stat().st_size for d in unique}  # verified sizes
        layer_descs = [_descriptor_dict(d, sizes[d.digest]) for d in layers]
        if schema1.is_schema1(resolved.manifest.media_type):
            config_bytes = schema1.complete_config(config_bytes, [store.blob_path(d.digest) for d in layers])
            layer_descs = [dict(d, mediaType=OCI_LAYER_GZIP) for d in layer_descs]
        config_desc: Dict[str, Any] = {"mediaType": OCI_CONFIG, "digest": "", "size": len(config_bytes)}
        config_desc["digest"] = store.ingest_bytes(config_bytes)
        config = json.loads(config_bytes)

        if resolved.manifest.media_type == OCI_MANIFEST:
            manifest_bytes = resolved.manifest.raw  # keep the registry's bytes: same digest as served
        else:
            manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                        "layers": layer_descs}
            manifest_bytes = json.dumps(manifest, separators=(",", ":")).encode()
        manifest_digest = store.ingest_bytes(manifest_bytes)

        size = len(manifest_bytes) + len(config_bytes) + sum(sizes.values())
        annotations = {
            ANN_CONFIG_DIGEST: config_desc["digest"],
            ANN_SIZE: str(size),
            ANN_CREATED: str(config.get("created") or ""),
            ANN_SOURCE_DIGEST: source.digest,
            ANN_SOURCE_MEDIA_TYPE: source.media_type,
            "org.hpcbox.pulled": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        descriptor = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
                      "annotations": annotations, "platform": _platform_dict(resolved.platform, config)}
        base = f"{ref.registry}/{ref.repository}"
        names = []
        if ref.tag:
            names.append(f"{base}:{ref.tag}")
        names.append(f"{base}@{source.digest}")
        needed = [manifest_digest, config_desc["digest"], *(d.digest for d in unique)]
        store.add_image(descriptor, names, needed)
    store.clean_temp()
    platform_text = None
    p = descriptor.get("platform")
    if isinstance(p, dict):
        platform_text = "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)
    return PullResult(names=names, manifest_digest=manifest_digest, config_digest=config_desc["digest"],
                      source_digest=source.digest, platform=platform_text,
                      downloaded=statuses.count("downloaded"), reused=statuses.count("exists"))
