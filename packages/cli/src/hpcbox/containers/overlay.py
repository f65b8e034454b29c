"""Overlay containers: a private ``upper/`` over a shared, once-extracted image rootfs.

Layout (see the README, "Overlay containers"):

- ``<home>/images-rootfs/<manifest digest hex>/``: the image's layers applied once (flattened), shared
  read-only by every overlay container of that image. Built in ``.tmp-<hex>-<random>`` while its builder
  holds ``locks/image-rootfs-<hex>.lock`` and renamed into place, so concurrent creates build it once
  and never see a half-made tree. hpcbox never writes into it after the rename.
- ``<home>/containers/<id>/``: ``upper/`` and ``work/`` (overlayfs' directories), an empty ``rootfs/``
  (the mount point: the runc engine's builtin runner mounts the overlay there, inside the container's
  mount namespace, so nothing stays mounted on the host) and ``container.json`` with
  ``"storage": "overlay"`` and ``"lower": <the image rootfs>``.

An image rootfs is removed by :func:`clean_image_rootfs` (called by ``rmi`` and ``prune``) once no image
in the index and no container refers to it, under the store's gc lock held exclusively (creates hold it
shared from the moment they look the image up until their container is listed).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Sequence, Set, Tuple

from hpcbox import storefiles
from hpcbox.errors import EXIT_USAGE
from hpcbox.store.lock import FileLock, LockBusy
from hpcbox.storefiles import IMAGES_ROOTFS, image_rootfs_dir, probe_record, read_text
from hpcbox.storefiles import probe_key as _probe_key

TEMP_PREFIX = ".tmp-"
STORAGE_COPY = "copy"
STORAGE_OVERLAY = storefiles.STORAGE_OVERLAY
STORAGES = (STORAGE_COPY, STORAGE_OVERLAY)
MODE_ENV = storefiles.CREATE_MODE_ENV
WHITEOUT_XATTR = "user.overlay.whiteout"
OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque")


def default_storage(environ: Optional[Any] = None) -> str:
    """The store-wide default from ``HPCBOX_CREATE_MODE`` (``copy`` when unset)."""
    from hpcbox.containers.errors import ContainerError

    value = (os.environ if environ is None else environ).get(MODE_ENV, "").strip().lower()
    if not value:
        return STORAGE_COPY
    if value not in STORAGES:
        raise ContainerError(f"{MODE_ENV}={value!r} is not a create mode",
                             f"set {MODE_ENV} to 'overlay' or 'copy', or unset it", EXIT_USAGE)
    return value


def rootfs_dir(store: Any, manifest_digest: str) -> Path:
    return Path(image_rootfs_dir(os.fspath(store.home), manifest_digest))


def _lock(store: Any, hexpart: str, blocking: bool = True) -> FileLock:
    return FileLock(Path(store.locks_dir) / f"image-rootfs-{hexpart}.lock", blocking=blocking)


def supported(directory: os.PathLike[str] | str) -> Tuple[bool, str]:
    """Whether a rootless overlay with its upper/work in *directory* can be mounted here, and why not.

    The probe (the runner mounts a test overlay in new namespaces: 10-700 ms on our VMs, more than the
    rest of `hpcbox run --rm --overlay IMAGE`) runs once per kernel, filesystem and runner: a success
    is recorded in ``.overlay-probe`` with what it depends on (kernel release, the
    directory's device, the runner's path, size and mtime) and taken as it is while they are the
    same. A failure is never recorded (each create probes again, and falls back to a copy). The record
    lies beside *directory* (the store's containers directory: in the store's home), not in it."""
    record = probe_record(os.fspath(directory))
    key = _probe_key(os.fspath(directory))
    if key is not None and read_text(record) == key:
        return True, "rootless overlayfs works here (userxattr)"
    try:  # the probe's module (subprocess, tempfile, platform: ~6 ms) only when it runs
        from hpcbox_engine_runc import overlay
    except ImportError as exc:
        return False, f"the runc engine is not installed ({exc})"
    try:
        ok, why = overlay.supported(os.fspath(directory))
    except Exception as exc:  # a broken probe means no overlay, never a failed create
        return False, f"the overlay probe failed ({type(exc).__name__}: {exc})"
    if ok and key is not None:
        _write_text(record, key)
    return ok, why


def _write_text(path: str, text: str) -> None:
    """Written whole or not at all (a read-only store just probes every time)."""
    temp = f"{path}.{os.getpid()}-{os.urandom(4).hex()}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def ensure_image_rootfs(store: Any, manifest_digest: str, layers: Callable[[], Sequence[Any]],
                        on_progress: Any = None) -> Path:
    """The shared rootfs of the image *manifest_digest*, built from ``layers()`` (hpcbox_layers.Layer
    objects, bottom first) if it does not exist yet.

    The caller holds the store's gc lock shared (the blobs are read, and the tree must not be collected
    before the caller's container refers to it)."""
    final = rootfs_dir(store, manifest_digest)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    Path(store.locks_dir).mkdir(parents=True, exist_ok=True)
    hexpart = final.name
    with _lock(store, hexpart):
        if final.is_dir():  # another create built it while we waited
            return final
        from hpcbox.containers.fs import remove_tree
        from hpcbox_layers import apply_layers

        temp = final.parent / f"{TEMP_PREFIX}{hexpart}-{os.urandom(4).hex()}"
        temp.mkdir()
        try:
            apply_layers(temp, list(layers()), on_progress=on_progress)
            os.rename(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                remove_tree(temp)
            raise
    return final


def referenced_rootfs(containers: Iterable[Any]) -> Set[str]:
    out = set()
    for c in containers:
        if c.storage == STORAGE_OVERLAY and c.lower:
            out.add(os.path.basename(os.path.normpath(c.lower)))
    return out


def clean_image_rootfs(store: Any, containers_store: Any) -> Optional[List[str]]:
    """Remove image rootfs trees that no image and no container refers to, and the leftovers of killed
    builds. Returns the names removed; None when a create or pull runs (try again later)."""
    from hpcbox.containers.fs import remove_tree

    base = Path(store.home) / IMAGES_ROOTFS
    if not base.is_dir():
        return []
    gc = store.gc_lock(shared=False, blocking=False)
    try:
        gc.acquire()
    except LockBusy:
        return None
    removed = []
    try:
        used = referenced_rootfs(containers_store.list())
        with store.index_lock():
            used |= {str(e.get("digest", "")).split(":", 1)[-1] for e in store.read_index()["manifests"]}
        for entry in os.scandir(base):
            if entry.name.startswith(TEMP_PREFIX):
                hexpart = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
                lock = _lock(store, hexpart, blocking=False)
                try:
                    lock.acquire()
                except (LockBusy, OSError):
                    continue  # still being built
                try:
                    remove_tree(entry.path)
                    removed.append(entry.name)
                finally:
                    lock.release()
            elif entry.name not in used:
                remove_tree(entry.path)
                removed.append(entry.name)
    finally:
        gc.release()
    return removed


# -- the merged view, for export and clone ---------------------------------------------------------


def _xattr(path: str, name: str) -> Optional[bytes]:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except (OSError, AttributeError):
        return None


def is_whiteout(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return stat.S_ISREG(st.st_mode) and st.st_size == 0 and _xattr(path, WHITEOUT_XATTR) is not None


def _is_opaque(path: str) -> bool:
    return any(_xattr(path, name) == b"y" for name in OPAQUE_XATTRS)


def merged_copy(lower: os.PathLike[str] | str, upper: os.PathLike[str] | str, dest: Path) -> None:
    """Write the overlay's merged view (lower, then upper's changes with its whiteouts and opaque
    directories honoured) into the new directory *dest*, as a plain tree."""
    import shutil  # lazily (~2 ms with bz2, lzma): every `hpcbox run --overlay IMAGE` imports this module

    from hpcbox.containers.fs import copy_tree, remove_tree

    copy_tree(Path(lower), dest)
    upper = os.fspath(upper)
    dirs = []
    for root, subdirs, files in os.walk(upper):
        rel = os.path.relpath(root, upper)
        out_root = str(dest) if rel == "." else os.path.join(dest, rel)
        for name in sorted(subdirs + files):
            src = os.path.join(root, name)
            dst = os.path.join(out_root, name)
            st = os.lstat(src)
            if is_whiteout(src, st):
                remove_tree(dst)
                continue
            if stat.S_ISDIR(st.st_mode):
                replaced = not os.path.isdir(dst) or os.path.islink(dst) or _is_opaque(src)
                if os.path.lexists(dst) and replaced:
                    remove_tree(dst)
                if not os.path.lexists(dst):
                    os.mkdir(dst, 0o700)
                else:
                    os.chmod(dst, 0o700)
                dirs.append((dst, st))
                continue
            remove_tree(dst)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(src, dst, follow_symlinks=False)
                os.chmod(dst, stat.S_IMODE(st.st_mode))
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    for dst, st in reversed(dirs):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
