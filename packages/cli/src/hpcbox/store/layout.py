"""The image store: an OCI image layout under ``<home>/images`` plus private ``tmp/`` and ``locks/``.

Over 500 lines: the :class:`Store` class, whose index, blob and garbage-collection methods share the
locking rules below (lookup, archives, verification and protection are modules of their own).

Layout of ``<home>`` (``$HPCBOX_HOME``, default ``~/.hpcbox``)::

    images/            an OCI image layout that skopeo and umoci read (oci:<home>/images:<name>)
      oci-layout
      index.json       one entry per name; the name is the org.opencontainers.image.ref.name annotation
      blobs/sha256/    content-addressed blobs, shared by every image that refers to them
    tmp/               downloads in progress (<alg>-<hex>.partial) and atomic-write temp files
    locks/             flock files: index.lock, gc.lock, blob-<hex>.lock
    containers/        one directory per container

Read-only image stores (``HPCBOX_IMAGES``, or ``image_stores`` in a config file; see
:mod:`hpcbox.settings`) are other stores (or bare OCI image layouts) that images, inspect, create and
run also read: :meth:`Store.find` looks in the user's own store first, then in each of them in order,
and :meth:`Store.read_blob`/:meth:`Store.readable_blob_path` read a blob from wherever it is. Nothing
is ever written to them: no locks, no temp files; rmi and prune only touch the user's own store.

Rules: ``index.json`` is only rewritten under ``locks/index.lock``, atomically. A blob only enters
``blobs/`` by a rename of a complete, verified file. An entry only enters ``index.json`` once every
blob it refers to is in ``blobs/``. Pulls hold ``gc.lock`` shared from their first download to
their commit; garbage collection and temp cleanup hold it exclusively, so they never delete a blob
that a pull has fetched but not yet committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from hpcbox_oci_bundle.mediatypes import OCI_INDEX

from hpcbox.store.atomic import TEMP_PREFIX, atomic_write_bytes, atomic_write_json, fsync_dir
from hpcbox.store.lock import FileLock, LockBusy
from hpcbox.storefiles import ANN_REF_NAME as _REF_NAME
from hpcbox.storefiles import sha256_digest

ANN_REF_NAME = _REF_NAME
ANN_CONFIG_DIGEST = "org.hpcbox.image.config"  # the image id, so listing needs no blob reads
ANN_SIZE = "org.hpcbox.image.size"
ANN_CREATED = "org.hpcbox.image.created"
ANN_SOURCE_DIGEST = "org.hpcbox.source.digest"  # digest of the manifest/index as the registry served it
ANN_SOURCE_MEDIA_TYPE = "org.hpcbox.source.mediatype"

OCI_LAYOUT_VERSION = "1.0.0"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class StoreError(Exception):
    """A store operation failed; str() is one line naming the problem and the fix."""


class UnknownImageError(StoreError):
    pass


class AmbiguousImageError(StoreError):
    pass


class StoreCorruptError(StoreError):
    """Something in the store is damaged; ``digest`` names the damaged blob when there is one."""

    def __init__(self, message: str, digest: str = ""):
        super().__init__(message)
        self.digest = digest


def gc_held_note(images: List[Image]) -> str:
    """The note of rmi and prune when a damaged manifest kept the garbage collection from deleting."""
    first = images[0]
    name = (first.tags + first.digests + [first.manifest_digest])[0]
    more = f" (and {len(images) - 1} more)" if len(images) > 1 else ""
    return (f"hpcbox: note: no blob was deleted: the manifest of {name}{more} is damaged, so the blobs it "
            f"needs are unknown; {repair_command(first)} (or 'hpcbox rmi {name}'), then prune\n")


def repair_command(image: Optional[Image], fallback: str = "IMAGE") -> str:
    """The one command that repairs a damaged (and discarded) blob of *image*: a pull by digest."""
    names = (image.digests + image.tags) if image is not None else []
    return f"run 'hpcbox pull {names[0] if names else fallback}' to fetch it again"


class Image:
    """One stored image: a manifest and all the names (tags and digest references) that point at it.

    (A plain class: ``dataclasses`` costs milliseconds to import and `hpcbox images` must start fast.)
    """

    __slots__ = ("annotations", "manifest_digest", "manifest_size", "media_type", "names", "platform",
                 "source")

    def __init__(self, manifest_digest: str, media_type: str, manifest_size: int, *,
                 names: Optional[List[str]] = None, annotations: Optional[Dict[str, str]] = None,
                 platform: Optional[Dict[str, str]] = None):
        self.manifest_digest = manifest_digest
        self.media_type = media_type
        self.manifest_size = manifest_size
        self.names = list(names or [])
        self.annotations = dict(annotations or {})
        self.platform = platform
        self.source: Optional[Store] = None  # the read-only store it lives in; None: the user's own

    def __repr__(self) -> str:
        return f"Image({self.manifest_digest!r}, names={self.names!r})"

    @property
    def id(self) -> str:
        return self.annotations.get(ANN_CONFIG_DIGEST, self.manifest_digest)

    @property
    def tags(self) -> List[str]:
        return [n for n in self.names if "@" not in n]

    @property
    def digests(self) -> List[str]:
        return [n for n in self.names if "@" in n]

    @property
    def size(self) -> int:
        try:
            return int(self.annotations.get(ANN_SIZE, "0"))
        except ValueError:
            return 0

    @property
    def created(self) -> str:
        return self.annotations.get(ANN_CREATED, "")


def _check_digest(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise StoreError(f"unsupported or malformed digest {digest!r}; only sha256 digests are stored")
    return digest.split(":", 1)[1]


class Store:
    """The user's store at *home*. Cheap to construct: nothing is created until :meth:`init`."""

    def __init__(self, home: os.PathLike[str] | str, image_stores: Any = ()):
        """*image_stores*: read-only stores to read images from after this one (paths, or a callable
        returning them, called on first need: most commands never look)."""
        self.home = Path(home).expanduser()
        self.images_dir = self.home / "images"
        self.blobs_dir = self.images_dir / "blobs" / "sha256"
        self.index_path = self.images_dir / "index.json"
        self.tmp_dir = self.home / "tmp"
        self.locks_dir = self.home / "locks"
        self.containers_dir = self.home / "containers"
        self.readonly = False
        self.gc_held_by: List[Image] = []  # see gc()
        self._image_stores = image_stores
        self._site: Optional[List[Store]] = None

    @classmethod
    def read_only(cls, path: os.PathLike[str] | str) -> Store:
        """A read-only image store at *path*: a store home (with ``images/``) or an OCI image layout."""
        root = Path(path).expanduser()
        store = cls(root)
        fix = "fix HPCBOX_IMAGES (or image_stores in the config file), or ask the site's admins"
        if not os.path.isdir(root):
            raise StoreError(f"the read-only image store {root} does not exist; {fix}")
        if not os.access(root, os.R_OK | os.X_OK) or (
                os.path.isdir(root / "images") and not os.access(root / "images", os.R_OK | os.X_OK)):
            raise StoreError(f"the read-only image store {root} is not readable for you; {fix}")
        if not (root / "images" / "index.json").is_file() and (root / "index.json").is_file():
            store.images_dir = root
            store.blobs_dir = root / "blobs" / "sha256"
            store.index_path = root / "index.json"
        if not store.index_path.is_file():
            raise StoreError(f"the read-only image store {root} holds no images/index.json or index.json; "
                             f"{fix}")
        store.readonly = True
        return store

    @property
    def image_stores(self) -> List[Store]:
        """The read-only stores behind this one, in search order."""
        if self._site is None:
            given = self._image_stores() if callable(self._image_stores) else self._image_stores
            mine = os.path.realpath(self.images_dir)
            stores = [s if isinstance(s, Store) else Store.read_only(s) for s in given]
            self._site = [s for s in stores if os.path.realpath(s.images_dir) != mine]
        return self._site

    @staticmethod
    def default_home() -> Path:
        env = os.environ.get("HPCBOX_HOME")
        return Path(env).expanduser() if env else Path.home() / ".hpcbox"

    # -- creation and locks -------------------------------------------------------------------

    def init(self) -> None:
        """Create the layout if missing (idempotent, safe against concurrent callers)."""
        for directory in (self.blobs_dir, self.tmp_dir, self.locks_dir):
            directory.mkdir(parents=True, exist_ok=True)
        if (self.images_dir / "oci-layout").exists() and self.index_path.exists():
            return
        with self.index_lock():
            layout = self.images_dir / "oci-layout"
            if not layout.exists():
                atomic_write_json(layout, {"imageLayoutVersion": OCI_LAYOUT_VERSION}, temp_dir=self.tmp_dir)
            if not self.index_path.exists():
                self._write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})

    def index_lock(self) -> FileLock:
        return FileLock(self.locks_dir / "index.lock")

    def gc_lock(self, shared: bool, blocking: bool = True) -> FileLock:
        return FileLock(self.locks_dir / "gc.lock", shared=shared, blocking=blocking)

    def blob_lock(self, digest: str) -> FileLock:
        return FileLock(self.locks_dir / f"blob-{_check_digest(digest)}.lock")

    # -- blobs --------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / _check_digest(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def readable_blob_path(self, digest: str) -> Path:
        """Where to read *digest*: this store's blob, else a read-only store's (else this store's path)."""
        path = self.blob_path(digest)
        if path.is_file() or self.readonly:
            return path
        for site in self.image_stores:
            other = site.blob_path(digest)
            if other.is_file():
                return other
        return path

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.readable_blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreCorruptError(
                f"blob {digest} is missing from {self.blobs_dir}; pull the image again"
            ) from None

    def read_json_blob(self, digest: str, what: str = "blob", image: Optional[Image] = None,
                       discard: bool = True) -> Any:
        """A manifest or config blob, checked against its digest (they are small) and parsed. A damaged
        one is removed from this store (so that the next pull fetches it again; not with *discard*
        False, for the commands that only read) and reported."""
        path = self.readable_blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreCorruptError(f"{what} blob {digest} is missing from the store; "
                                    f"{repair_command(image)}", digest) from None
        problem = ""
        if sha256_digest(data) != digest:
            problem = "its content does not match its digest"
        else:
            try:
                return json.loads(data)
            except ValueError:
                problem = "it is not JSON"
        removed = discard and self.discard_damaged(digest, path)
        raise StoreCorruptError(f"{what} blob {digest} is damaged ({problem}{'; removed' if removed else ''})"
                                f"; {repair_command(image)}", digest)

    def discard_damaged(self, digest: str, path: Optional[Path] = None) -> bool:
        """Remove a blob found damaged from this store, so that a pull fetches it again; a blob of a
        read-only store is left alone (False). Only the file that was checked goes: a good copy that a
        concurrent pull has renamed into place meanwhile (another inode) stays."""
        own = self.blob_path(digest)
        if self.readonly or (path is not None and Path(path) != own):
            return False
        try:
            checked = own.stat()
            with self.blob_lock(digest):
                now = own.stat()
                if (now.st_ino, now.st_dev) == (checked.st_ino, checked.st_dev):
                    own.unlink()
                    fsync_dir(self.blobs_dir)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def blob_intact(self, digest: str, size: Optional[int]) -> bool:
        """The cheap check of every pull: the blob is there and has the size its descriptor says."""
        try:
            actual = self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return False
        return size is None or size < 0 or actual == size

    def partial_path(self, digest: str) -> Path:
        return self.tmp_dir / f"sha256-{_check_digest(digest)}.partial"

    def ingest_bytes(self, data: bytes) -> str:
        """Store *data* as a blob (atomically, once) and return its digest."""
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        try:
            intact = path.read_bytes() == data  # small blobs (manifests, configs): compare them whole
        except FileNotFoundError:
            intact = False
        if not intact:  # missing, or damaged: (re)written atomically
            atomic_write_bytes(path, data, temp_dir=self.tmp_dir)
        return digest

    def commit_partial(self, partial: Path, digest: str, size: Optional[int] = None) -> None:
        """Move a complete, verified download into ``blobs/`` (a rename on the same filesystem)."""
        if size is not None:
            actual = partial.stat().st_size
            if actual != size:
                partial.unlink()
                raise StoreError(
                    f"download of {digest} has {actual} bytes, expected {size}; pull the image again"
                )
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, self.blob_path(digest))
        fsync_dir(self.blobs_dir)

    # -- index --------------------------------------------------------------------------------

    def not_a_directory(self) -> StoreError:
        """The error for a store whose home (or one of its folders) is a file."""
        return StoreError(f"the store {self.home} is not a directory (or holds a file where a folder "
                          f"should be); give a store directory with --home DIR or HPCBOX_HOME")

    def read_index(self) -> Dict[str, Any]:
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        except NotADirectoryError:
            raise self.not_a_directory() from None
        try:
            index = json.loads(data)
        except ValueError as exc:
            raise StoreCorruptError(
                f"{self.index_path} is not valid JSON ({exc}); restore or remove it"
            ) from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
            raise StoreCorruptError(f"{self.index_path} is not an OCI index; restore or remove it")
        index.setdefault("manifests", [])
        return index

    def _write_index(self, index: Dict[str, Any]) -> None:
        atomic_write_json(self.index_path, index, temp_dir=self.tmp_dir)

    def images(self) -> List[Image]:
        """All stored images, in index order, one per manifest digest."""
        by_digest: Dict[str, Image] = {}
        for entry in self.read_index()["manifests"]:
            digest = entry.get("digest", "")
            annotations = dict(entry.get("annotations") or {})
            name = annotations.pop(ANN_REF_NAME, None)
            image = by_digest.get(digest)
            if image is None:
                image = Image(
                    manifest_digest=digest,
                    media_type=entry.get("mediaType", ""),
                    manifest_size=int(entry.get("size", 0)),
                    annotations=annotations,
                    platform=entry.get("platform"),
                )
                by_digest[digest] = image
            if name and name not in image.names:
                image.names.append(name)
        return list(by_digest.values())

    def all_images(self) -> List[Image]:
        """This store's images, then each read-only store's (``image.source`` set)."""
        images = self.images()
        for site in self.image_stores:
            for image in site.images():
                image.source = site
                images.append(image)
        return images

    def find(self, names: Iterable[str] = (), id_prefix: Optional[str] = None) -> Image:
        """The image carrying one of *names*, or else the one whose id/digest starts with *id_prefix*;
        in this store first, then in the read-only stores in order (``image.source`` set)."""
        wanted = list(names)
        try:
            return self._find_here(wanted, id_prefix)
        except UnknownImageError:
            if self.readonly:
                raise
            for site in self.image_stores:
                try:
                    image = site._find_here(wanted, id_prefix)
                except UnknownImageError:
                    continue
                image.source = site
                return image
            raise

    def _find_here(self, wanted: List[str], id_prefix: Optional[str]) -> Image:
        images = self.images()
        for name in wanted:
            for image in images:
                if name in image.names:
                    return image
        if id_prefix:
            prefix = id_prefix if id_prefix.startswith("sha256:") else "sha256:" + id_prefix
            hits = [i for i in images if i.id.startswith(prefix) or i.manifest_digest.startswith(prefix)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise AmbiguousImageError(
                    f"image id prefix {id_prefix!r} matches {len(hits)} images; give more digits or a name"
                )
        shown = wanted[0] if wanted else id_prefix
        raise UnknownImageError(f"no image {shown!r} in the store; run 'hpcbox images' or 'hpcbox pull' it")

    def add_image(self, descriptor: Dict[str, Any], names: Iterable[str], blobs: Iterable[str]) -> None:
        """Commit an image: point each of *names* at the manifest *descriptor*, atomically.

        *blobs* are the digests the image needs (manifest, config, layers); the commit refuses
        if one is missing, so the index never lists a half image. Names move from older images.
        """
        names = list(dict.fromkeys(names))
        with self.index_lock():
            missing = [d for d in blobs if not self.has_blob(d)]
            if missing:
                raise StoreCorruptError(f"blob {missing[0]} vanished before the commit; pull the image again")
            index = self.read_index()
            kept = [e for e in index["manifests"]
                    if (e.get("annotations") or {}).get(ANN_REF_NAME) not in names]
            for name in names:
                entry = json.loads(json.dumps(descriptor))
                entry.setdefault("annotations", {})[ANN_REF_NAME] = name
                kept.append(entry)
            index["manifests"] = kept
            self._write_index(index)

    def tag(self, image: Image, name: str) -> None:
        """Add *name* to *image* (moving it away from any other image)."""
        with self.index_lock():
            index = self.read_index()
            source = next((e for e in index["manifests"] if e.get("digest") == image.manifest_digest), None)
            if source is None:
                raise UnknownImageError(f"image {image.manifest_digest} was removed meanwhile; pull it again")
            kept = [e for e in index["manifests"] if (e.get("annotations") or {}).get(ANN_REF_NAME) != name]
            entry = json.loads(json.dumps(source))
            entry.setdefault("annotations", {})[ANN_REF_NAME] = name
            kept.append(entry)
            index["manifests"] = kept
            self._write_index(index)

    def untag(self, name: str) -> Tuple[Image, bool]:
        """Remove the name *name*. When only digest references remain, the image goes too.

        Returns the image and whether it was removed entirely.
        """
        with self.index_lock():
            index = self.read_index()
            entry = next((e for e in index["manifests"]
                          if (e.get("annotations") or {}).get(ANN_REF_NAME) == name), None)
            if entry is None:
                raise UnknownImageError(f"no image {name!r} in the store; run 'hpcbox images'")
            digest = entry.get("digest")
            image = next(i for i in self.images() if i.manifest_digest == digest)
            rest = [e for e in index["manifests"] if e is not entry]
            remaining = [(e.get("annotations") or {}).get(ANN_REF_NAME, "") for e in rest
                         if e.get("digest") == digest]
            removed = all("@" in n for n in remaining)
            if removed:
                rest = [e for e in rest if e.get("digest") != digest]
            index["manifests"] = rest
            self._write_index(index)
            return image, removed

    def delete(self, manifest_digest: str) -> None:
        """Remove every name of the image with *manifest_digest*."""
        with self.index_lock():
            index = self.read_index()
            index["manifests"] = [e for e in index["manifests"] if e.get("digest") != manifest_digest]
            self._write_index(index)

    # -- garbage collection and cleanup -------------------------------------------------------

    def referenced_blobs(self, unreadable: Optional[List[str]] = None) -> Set[str]:
        """Digests of every blob that a listed image needs. The digests of listed manifests that are
        missing or damaged (whose blobs cannot be known) are appended to *unreadable*."""
        refs = set()
        for entry in self.read_index()["manifests"]:
            digest = entry.get("digest", "")
            refs.add(digest)
            try:
                manifest = self.read_json_blob(digest, "manifest", discard=False)
            except StoreError:
                if unreadable is not None:
                    unreadable.append(digest)
                continue
            if not isinstance(manifest, dict):
                continue
            for desc in [manifest.get("config") or {}, *(manifest.get("layers") or [])]:
                if desc.get("digest"):
                    refs.add(desc["digest"])
            for desc in manifest.get("manifests") or []:  # a nested index, if one is ever stored
                if desc.get("digest"):
                    refs.add(desc["digest"])
        return refs

    def gc(self) -> Optional[List[Tuple[str, int]]]:
        """Delete blobs that no image refers to. None when a pull runs (try again later). While a
        listed manifest is missing or damaged nothing is deleted (the blobs it needs cannot be
        told from the others: its repair by pull would have to fetch them all again); the images
        concerned are in :attr:`gc_held_by` then."""
        self.gc_held_by = []
        if not self.blobs_dir.is_dir():
            return []
        lock = self.gc_lock(shared=False, blocking=False)
        try:
            lock.acquire()
        except LockBusy:
            return None
        try:
            with self.index_lock():
                unreadable: List[str] = []
                referenced = self.referenced_blobs(unreadable)
                if unreadable:
                    self.gc_held_by = [i for i in self.images() if i.manifest_digest in unreadable]
                    return []
                removed = []
                for path in self.blobs_dir.iterdir():
                    digest = "sha256:" + path.name
                    if digest in referenced:
                        continue
                    size = path.stat().st_size
                    path.unlink()
                    removed.append((digest, size))
                if removed:
                    fsync_dir(self.blobs_dir)
                return removed
        finally:
            lock.release()

    def clean_temp(self) -> bool:
        """Remove leftovers of interrupted pulls (partial downloads, temp files, blob locks).

        Only done while no pull runs; returns False when one does.
        """
        if not self.tmp_dir.is_dir():
            return True
        lock = self.gc_lock(shared=False, blocking=False)
        try:
            lock.acquire()
        except LockBusy:
            return False
        try:
            with self.index_lock():  # atomic writes of index.json put their temp files here too
                self._remove_leftovers()
            return True
        finally:
            lock.release()

    def _remove_leftovers(self) -> None:
        for path in self.tmp_dir.iterdir():
            if path.name.endswith(".partial") or path.name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        for path in self.locks_dir.glob("blob-*.lock"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
