"""The container store: ``<home>/containers/<id>/`` holding ``rootfs/``, ``container.json``, ``config.json``.

Over 500 lines: one class, whose create, removal, renaming and listing share the locking rules
below; its errors (:mod:`.errors`) and filesystem helpers (:mod:`.fs`) are modules of their own.

    from hpcbox.containers import ContainerStore
    cs = ContainerStore(store)             # store: hpcbox.store.layout.Store
    c = cs.create("busybox", name="box")   # the image must be in the store (the CLI pulls it first)
    cs.get("box").rootfs                   # Path .../containers/<id>/rootfs

Rules (see the README):

- A container is built in ``containers/.create-<id>/`` while its creator holds ``locks/create-<id>.lock``,
  and renamed to ``containers/<id>`` once complete, under ``locks/containers.lock`` (which also guards
  names, so names stay unique). Only ``<64 hex>`` directories are containers: a killed create leaves
  no container, and its leftover (whose lock nobody holds) is removed by the next create or by prune.
- Removal renames ``<id>`` to ``.rm-<id>`` first (gone from listings at once), then deletes the tree,
  making directories u+rwx on the way; a killed removal is finished by prune.
- ``container.json`` is only rewritten atomically under ``containers.lock``.
- Blobs a create reads are protected from garbage collection by holding the store's gc lock shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Union

from hpcbox import storefiles
from hpcbox.containers.errors import (
    AmbiguousContainerError,
    ContainerError,
    ContainerExistsError,
    ContainerInUseError,
    DamagedContainerError,
    ProtectedError,
    UnknownContainerError,
)
from hpcbox.containers.fs import copy_rootfs, remove_tree
from hpcbox.errors import EXIT_NOT_FOUND, EXIT_USAGE
from hpcbox.store.atomic import atomic_write_json, json_document
from hpcbox.store.lock import FileLock, LockBusy
from hpcbox.storefiles import image_reference, new_container_meta, now

TYPE_CHECKING = False  # names for the type checker only
if TYPE_CHECKING:
    from hpcbox_layers import Layer

_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
CREATE_PREFIX = storefiles.CREATE_PREFIX
REMOVE_PREFIX = storefiles.REMOVE_PREFIX
META = storefiles.CONTAINER_META


def check_name(name: str) -> str:
    """Names: a letter or digit, then letters, digits, ``_ . -`` (128 at most), and not a 64-hex id."""
    if not _NAME_RE.match(name or "") or _ID_RE.match(name):
        raise ContainerError(f"invalid container name {name!r}",
                             "use letters, digits, '_', '.' or '-', starting with a letter or digit",
                             EXIT_USAGE)
    return name


class Damaged:
    """A container directory whose container.json is missing or unreadable: listed, removable."""

    def __init__(self, directory: Path, reason: str, names: List[str]):
        self.dir = directory
        self.id = directory.name
        self.short_id = self.id[:12]
        self.reason = reason
        self.names = names

    def is_in_use(self) -> bool:
        return Container.is_in_use(self)  # type: ignore[arg-type]


class Container:
    """One complete container. Attributes mirror ``container.json``; see :meth:`ContainerStore.get`."""

    def __init__(self, cs: ContainerStore, directory: Path, meta: Dict[str, Any]):
        self._cs = cs
        self.dir = directory
        self._meta = meta

    def __repr__(self) -> str:
        return f"Container({self.short_id!r}, names={self.names!r})"

    # the contract's attributes
    id = property(lambda self: self._meta["id"])
    short_id = property(lambda self: self._meta["id"][:12])
    names = property(lambda self: list(self._meta.get("names") or []))
    image = property(lambda self: dict(self._meta.get("image") or {}))
    image_config = property(lambda self: dict(self._meta.get("image_config") or {}))
    created = property(lambda self: str(self._meta.get("created") or ""))
    protected = property(lambda self: bool(self._meta.get("protected")))
    execmode = property(lambda self: self._meta.get("execmode"))
    settings = property(lambda self: dict(self._meta.get("settings") or {}))
    storage = property(lambda self: str(self._meta.get("storage") or "copy"))  # "copy" or "overlay"
    lower = property(lambda self: self._meta.get("lower"))  # overlay: the shared image rootfs
    nvidia = property(lambda self: self._meta.get("nvidia"))  # setup --nvidia: {"driver", "files"}

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @property
    def config_path(self) -> Path:
        return self.dir / "config.json"

    def as_dict(self) -> Dict[str, Any]:
        copied: Dict[str, Any] = json.loads(json.dumps(self._meta))
        return copied

    def update(self, **fields: Any) -> None:
        """Rewrite ``container.json`` with *fields* changed, atomically and under the containers lock.

        ``id`` and ``names`` cannot be changed here (use the store's name methods).
        """
        bad = {"id", "names"} & set(fields)
        if bad:
            raise ValueError(f"update() cannot change {sorted(bad)}; use ContainerStore.add_name/rename")
        with self._cs.lock():
            meta = self._cs._read_meta(self.dir)
            if meta is None:
                raise UnknownContainerError(self.id)
            meta.update(json.loads(json.dumps(fields)))
            self._cs._write_meta(self.dir, meta)
            self._meta = meta

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Held (shared) while a process runs in the container: ``rm`` without -f then refuses."""
        with FileLock(self.dir / ".in-use.lock", shared=True):
            yield

    def is_in_use(self) -> bool:
        lock = FileLock(self.dir / ".in-use.lock", blocking=False)
        try:
            lock.acquire()
        except LockBusy:
            return True
        except OSError:
            return False
        lock.release()
        return False


class ContainerStore:
    """The containers of one :class:`hpcbox.store.layout.Store`."""

    def __init__(self, store: Any):
        self.store = store
        self.dir = Path(store.containers_dir)

    # -- locks and metadata ----------------------------------------------------------------------

    def _prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store.locks_dir.mkdir(parents=True, exist_ok=True)

    def lock(self) -> FileLock:
        self._prepare()
        return FileLock(self.store.locks_dir / "containers.lock")

    def _create_lock(self, cid: str, blocking: bool = True) -> FileLock:
        return FileLock(self.store.locks_dir / f"create-{cid}.lock", blocking=blocking)

    @staticmethod
    def _read_meta(directory: Path) -> Optional[Dict[str, Any]]:
        try:
            meta = json.loads((directory / META).read_bytes())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and _ID_RE.match(str(meta.get("id", ""))) else None

    def _write_meta(self, directory: Path, meta: Dict[str, Any]) -> None:
        atomic_write_json(directory / META, meta)

    # -- queries -----------------------------------------------------------------------------------

    def list(self) -> List[Container]:
        """Complete containers, oldest first."""
        out = []
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise self.store.not_a_directory() from None
        for entry in entries:
            if not _ID_RE.match(entry.name):
                continue
            meta = self._read_meta(Path(entry.path))
            if meta is not None and meta["id"] == entry.name:
                out.append(Container(self, Path(entry.path), meta))
        out.sort(key=lambda c: (c.created, c.id))
        return out

    def damaged(self, known: Optional[Set[str]] = None) -> List[Damaged]:
        """Container directories whose container.json is missing or unreadable (a disk that filled or
        failed under the store): never run, but listed by ``ps``, removable with ``rm``, reclaimed by
        ``prune``. Their names are read from what is left of the file where possible."""
        out = []
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise self.store.not_a_directory() from None
        for entry in entries:
            if not _ID_RE.match(entry.name) or (known and entry.name in known):
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            meta = self._read_meta(path)
            if meta is not None and meta["id"] == entry.name:
                continue
            try:
                raw = (path / META).read_bytes()
                reason = "its container.json is not valid" if raw else "its container.json is empty"
            except FileNotFoundError:
                raw, reason = b"", "its container.json is missing"
            except OSError as exc:
                raw, reason = b"", f"its container.json cannot be read: {exc.strerror}"
            out.append(Damaged(path, reason, _salvage_names(raw)))
        out.sort(key=lambda d: d.id)
        return out

    def _damaged_match(self, text: str, known: Optional[Set[str]] = None) -> Optional[Damaged]:
        prefix = re.match(r"^[0-9a-f]{4,}$", text) is not None
        for d in self.damaged(known):
            if text in d.names or d.id == text or (prefix and d.id.startswith(text)):
                return d
        return None

    def get(self, text: str) -> Container:
        """By name, full id, or a unique id prefix."""
        containers = self.list() if text else []
        try:
            return self._get(text, containers)
        except UnknownContainerError:
            # one more scandir (the good containers' files are not read again): `run IMAGE` comes here
            damaged = self._damaged_match(text, {c.id for c in containers}) if text else None
            if damaged is None:
                raise
            raise DamagedContainerError(text, damaged.reason) from None

    def _get(self, text: str, containers: List[Container]) -> Container:
        if not text:
            raise UnknownContainerError(text)
        for c in containers:
            if text in c.names:
                return c
        for c in containers:
            if c.id == text:
                return c
        if re.match(r"^[0-9a-f]+$", text):
            hits = [c for c in containers if c.id.startswith(text)]
            if len(hits) == 1:
                return hits[0]
            if hits:
                raise AmbiguousContainerError(text, len(hits))
        raise UnknownContainerError(text)

    def _name_owner(self, name: str) -> Optional[Container]:
        return next((c for c in self.list() if name in c.names), None)

    # -- create ------------------------------------------------------------------------------------

    def create(self, image_name_or_id: str, name: Optional[str] = None, *, platform: Any = None,
               on_progress: Any = None, storage: Optional[str] = None, on_note: Any = None,
               durable: bool = True) -> Container:
        """Extract the stored image into a new container; see the module docstring for the guarantees.

        *durable* False (``hpcbox run --rm``: removed after one run): the container's record is not
        fsynced; the create stays atomic (the rename), and after a crash the store shows a container
        without a readable record as damaged, which ``rm`` removes. On a shared filesystem each fsync
        is a round trip to the server.

        *storage* ``"overlay"`` (default: ``HPCBOX_CREATE_MODE``, else ``"copy"``) makes an overlay
        container over the image's shared rootfs (see :mod:`hpcbox.containers.overlay`); where overlays
        cannot be mounted it makes a copy and calls ``on_note(reason)``."""
        import hpcbox.containers.overlay as _overlay
        from hpcbox.store import lookup

        if name is not None:
            check_name(name)
        store = self.store
        self._prepare()
        storage = storage or _overlay.default_storage()
        if storage not in _overlay.STORAGES:
            raise ContainerError(f"unknown create mode {storage!r}", "use 'overlay' or 'copy'", EXIT_USAGE)
        if storage == _overlay.STORAGE_OVERLAY:
            ok, why = _overlay.supported(self.dir)
            lower_path = str(_overlay.rootfs_dir(store, "sha256:0"))
            if ok and ("," in lower_path or ":" in lower_path):
                ok, why = False, f"the store path {store.home} holds ',' or ':', which overlayfs refuses"
            if not ok:
                storage = _overlay.STORAGE_COPY
                if on_note is not None:
                    why = why.replace("; the rootfs will be a full copy", "")
                    on_note(f"overlay containers are not available here ({why}); made a copy instead")
        self.clean_leftovers()
        with store.gc_lock(shared=True):
            image = lookup.find(store, image_name_or_id)
            _check_platform(image, platform, image_name_or_id)
            manifest = store.read_json_blob(image.manifest_digest, "manifest", image)
            if "layers" not in manifest:
                raise ContainerError(f"image {image_name_or_id} is an index, not one image",
                                     "pull it again with --platform")
            config_digest = (manifest.get("config") or {}).get("digest", "")
            config = store.read_json_blob(config_digest, "config", image) if config_digest else {}
            reference = image_reference(image.tags, image.names, image_name_or_id)
            meta = new_container_meta(reference, image.manifest_digest, config_digest, config,
                                      names=[name] if name else [], storage=storage)

            def layers() -> List[Layer]:
                from hpcbox.store.verify import checked_layers

                return checked_layers(store, image, manifest)

            def fill(rootfs: Path) -> None:
                from hpcbox.store.verify import damaged_layer_check

                with damaged_layer_check(store, image, manifest):
                    if storage == _overlay.STORAGE_OVERLAY:  # the layers are only read the first time
                        lower = _overlay.ensure_image_rootfs(store, image.manifest_digest, layers,
                                                             on_progress)
                        meta["lower"] = str(lower)
                        (rootfs.parent / "upper").mkdir()
                        (rootfs.parent / "work").mkdir()
                        return
                    from hpcbox_layers import apply_layers

                    apply_layers(rootfs, layers(), on_progress=on_progress)

            return self._build(meta, fill, durable)

    def _build(self, meta: Dict[str, Any], fill: Any, durable: bool = True) -> Container:
        cid = os.urandom(32).hex()
        meta["id"] = cid
        meta["created"] = now()
        work = self.dir / f"{CREATE_PREFIX}{cid}"
        self._prepare()
        try:
            with self._create_lock(cid):
                try:
                    work.mkdir()
                    (work / "rootfs").mkdir()
                    fill(work / "rootfs")
                    if durable:
                        self._write_meta(work, meta)
                    else:  # the directory is still private: a plain write, not a synced replace
                        (work / META).write_bytes(json_document(meta))
                    with self.lock():
                        for name in meta["names"]:
                            if self._name_owner(name) is not None:
                                raise ContainerExistsError(name)
                        os.rename(work, self.dir / cid)
                    if durable:
                        with contextlib.suppress(OSError):
                            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
                            os.fsync(fd)
                            os.close(fd)
                except BaseException:
                    with contextlib.suppress(OSError):
                        remove_tree(work)
                    raise
        finally:  # also after a failed create (e.g. a name taken meanwhile): no stale lock file
            with contextlib.suppress(OSError):
                os.unlink(self.store.locks_dir / f"create-{cid}.lock")
        return Container(self, self.dir / cid, meta)

    def clone(self, source: str, name: Optional[str] = None) -> Container:
        """A new container with a copy of *source*'s rootfs and settings (hardlinks, symlinks, modes kept)."""
        import shutil

        if name is not None:
            check_name(name)
        self._prepare()
        original = self.get(source)
        meta = original.as_dict()
        meta.update(names=[name] if name else [], protected=False, cloned_from=original.id)

        meta.pop("storage", None)  # a clone is a plain copy (of the merged view, for an overlay)
        meta.pop("lower", None)

        def fill(rootfs: Path) -> None:
            if original.storage == "overlay":
                from hpcbox.containers.overlay import merged_copy

                rootfs.rmdir()
                merged_copy(original.lower, original.upper, rootfs)
            else:
                copy_rootfs(original.rootfs, rootfs)
            if original.config_path.exists():
                shutil.copyfile(original.config_path, rootfs.parent / "config.json")

        return self._build(meta, fill)

    # -- names -------------------------------------------------------------------------------------

    def add_name(self, id_or_name: str, name: str) -> Container:
        check_name(name)
        with self.lock():
            c = self.get(id_or_name)
            owner = self._name_owner(name)
            if owner is not None:
                if owner.id == c.id:
                    return c
                raise ContainerExistsError(name)
            meta = c.as_dict()
            meta["names"] = [*meta.get("names", []), name]
            self._write_meta(c.dir, meta)
            return Container(self, c.dir, meta)

    def remove_name(self, name: str) -> Container:
        with self.lock():
            c = self._name_owner(name)
            if c is None:
                raise ContainerError(f"no container is named {name!r}", "run 'hpcbox ps' to see the names",
                                     EXIT_NOT_FOUND)
            meta = c.as_dict()
            meta["names"] = [n for n in meta["names"] if n != name]
            self._write_meta(c.dir, meta)
            return Container(self, c.dir, meta)

    def rename(self, old: str, new: str) -> Container:
        check_name(new)
        with self.lock():
            c = self.get(old)
            owner = self._name_owner(new)
            if owner is not None and owner.id != c.id:
                raise ContainerExistsError(new)
            meta = c.as_dict()
            names = [n for n in meta.get("names", []) if n != new]
            if old in names:
                names[names.index(old)] = new
            elif names:
                names[0] = new
            else:
                names = [new]
            meta["names"] = names
            self._write_meta(c.dir, meta)
            return Container(self, c.dir, meta)

    # -- removal and cleanup -----------------------------------------------------------------------

    def remove(self, id_or_name: str, force: bool = False) -> Union[Container, Damaged]:
        """Remove a container. Protected ones are refused (even with *force*); in-use ones unless *force*."""
        with self.lock():
            try:
                c = self.get(id_or_name)
            except DamagedContainerError:
                d = self._damaged_match(id_or_name)
                if d is None:
                    raise
                return self._remove_damaged(d, force)
            if c.protected:
                raise ProtectedError(f"container {id_or_name} is protected",
                                     f"run 'hpcbox unprotect {id_or_name}' first")
            if not force and c.is_in_use():
                raise ContainerInUseError(f"container {id_or_name} is in use by a running process",
                                          "stop it first, or use 'hpcbox rm -f'")
            doomed = self.dir / f"{REMOVE_PREFIX}{c.id}"
            os.rename(c.dir, doomed)
        remove_tree(doomed)
        return c

    def _remove_damaged(self, d: Damaged, force: bool) -> Damaged:
        if not force and d.is_in_use():
            raise ContainerInUseError(f"container {d.id} is in use by a running process",
                                      "stop it first, or use 'hpcbox rm -f'")
        doomed = self.dir / f"{REMOVE_PREFIX}{d.id}"
        os.rename(d.dir, doomed)
        remove_tree(doomed)
        return d

    def remove_damaged(self) -> List[Damaged]:
        """Remove every damaged container that no process uses (for prune)."""
        removed = []
        with self.lock():
            for d in self.damaged():
                if not d.is_in_use():
                    removed.append(self._remove_damaged(d, False))
        return removed

    def clean_leftovers(self) -> List[str]:
        """Remove what killed creates and removals left behind (never a create that still runs)."""
        removed: List[str] = []
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            return removed
        for entry in entries:
            if entry.name.startswith(REMOVE_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    remove_tree(entry.path)
                    removed.append(entry.name)
            elif entry.name.startswith(CREATE_PREFIX):
                cid = entry.name[len(CREATE_PREFIX):]
                lock = self._create_lock(cid, blocking=False)
                try:
                    lock.acquire()
                except LockBusy:
                    continue  # still being created
                except OSError:
                    continue
                try:
                    if os.path.lexists(entry.path):
                        remove_tree(entry.path)
                        removed.append(entry.name)
                finally:
                    lock.release()
                    with contextlib.suppress(OSError):
                        os.unlink(self.store.locks_dir / f"create-{cid}.lock")
        return removed


def _salvage_names(raw: bytes) -> List[str]:
    """The names a damaged container.json still shows (it starts with them: see _build), also from a
    list cut before its end (each name read is whole: its closing quote is there)."""
    m = re.search(rb'"names"\s*:\s*\[([^\]]*)', raw)
    if not m:
        return []
    return [n.decode() for n in re.findall(rb'"([A-Za-z0-9][A-Za-z0-9_.-]{0,127})"', m.group(1))]


def _check_platform(image: Any, platform: Any, text: str) -> None:
    if platform is None or not image.platform:
        return
    want = {"os": getattr(platform, "os", None), "architecture": getattr(platform, "architecture", None)}
    have = image.platform
    for key, value in want.items():
        if value and have.get(key) and have.get(key) != value:
            shown = "/".join(x for x in (have.get("os"), have.get("architecture"), have.get("variant")) if x)
            raise ContainerError(f"image {text} in the store is for {shown}",
                                 "pull it again with --platform, or omit --platform")
