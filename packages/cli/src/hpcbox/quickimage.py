"""`hpcbox run --rm --overlay IMAGE` of a stored image without the store's classes.

Many-task workflows start a new container per task, and the way to do that cheaply is an overlay
container removed after its run. Through :mod:`hpcbox.store` and :mod:`hpcbox.containers` that costs
~10 ms of imports more than `hpcbox run CONTAINER` (pathlib, re, enum, functools, json, typing,
shutil), and about as much again in Python work. Here the common case takes the same steps on
plain string paths, under the same locks, writing the same files (:mod:`hpcbox.storefiles` builds the
record for both): the image named as the index names it (or a Docker Hub short name) in the user's
own store, already flattened for overlays, whose overlay probe has succeeded before, with no
``--name``, ``--platform``, ``--gpus`` or udocker option. Anything else, and anything that does not
look right on the way (a damaged container, a blob that does not match its digest, an index entry
that is not one image), returns None before it has changed anything, and `run`'s own command does the
work, and says what is wrong.
"""

from __future__ import annotations

import os

from hpcbox import storefiles
from hpcbox.store.lock import FileLock

TYPE_CHECKING = False  # typing for the checker only (its import costs ~2 ms of each run)
if TYPE_CHECKING:
    from argparse import Namespace as Args
    from typing import Any, Dict, List, Optional, Tuple

    from hpcbox.leancontainers import LeanContainer

_HEX = frozenset("0123456789abcdef")
_ASIDE = ("name", "platform", "gpus", "location", "device", "dri", "publish", "publish_all", "novol",
          "volumes_from", "nometa")


def _plain(args: Args) -> bool:
    """`--rm --overlay IMAGE` (or `--rm IMAGE` where ``HPCBOX_CREATE_MODE=overlay`` makes overlay the
    default, as the store's create reads it) without the options left to `run`'s own command."""
    overlay = args.overlay or os.environ.get(storefiles.CREATE_MODE_ENV, "").strip().lower() == "overlay"
    return bool(args.rm and overlay and args.pull != "always" and args.target
                and not any(getattr(args, key, None) for key in _ASIDE))


def run_image(args: Args) -> Optional[int]:
    """Create, run and remove the overlay container; None (having changed nothing) where `run`'s own
    command must do it."""
    from hpcbox.leancontainers import LeanContainer, scan_containers
    from hpcbox.storehome import store_home

    home = store_home(args) if _plain(args) else None
    name = storefiles.stored_name(args.target) if home else None
    if not home or not name or "," in home or ":" in home or not os.path.isdir(home):
        return None  # (overlayfs takes ',' and ':' as separators: the store says so)
    containers = scan_containers(home, strict=True)
    if containers is None or any(args.target in c.names or c.id.startswith(args.target) for c in containers):
        return None  # a container's name, id or id prefix (also one of several: the store's error)
    if not storefiles.overlay_recorded(os.path.join(home, "containers")):
        return None  # the probe, or its failure, is `run`'s to tell
    created = _create(home, name, args.target)
    if created is None:
        return None
    container = LeanContainer(*created)
    from hpcbox.commands import run as command

    try:
        return command._run(args, container)
    finally:
        _remove(home, container)


def _create(home: str, name: str, typed: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """The new container's directory and record, made as ``ContainerStore.create`` makes an overlay
    container (the store's gc lock held shared from the look-up to the rename), or None."""
    locks = os.path.join(home, "locks")
    os.makedirs(locks, exist_ok=True)
    with FileLock(os.path.join(locks, "gc.lock"), shared=True):
        image = _image(home, name)
        if image is None:
            return None
        digest, names = image
        lower = storefiles.image_rootfs_dir(home, digest)
        manifest = _json_blob(home, digest) if os.path.isdir(lower) else None
        if not isinstance(manifest, dict) or "layers" not in manifest:
            return None
        config_digest = (manifest.get("config") or {}).get("digest", "")
        config = _json_blob(home, config_digest) if config_digest else {}
        if not isinstance(config, dict):
            return None
        reference = storefiles.image_reference([n for n in names if "@" not in n], names, typed)
        meta = storefiles.new_container_meta(reference, digest, config_digest, config, names=[],
                                             storage=storefiles.STORAGE_OVERLAY)
        meta["lower"] = lower
        return _build(home, meta), meta


def _image(home: str, name: str) -> Optional[Tuple[str, List[str]]]:
    """The manifest digest the index names *name* with, and all of that image's names (index order)."""
    from hpcbox import leanjson

    try:
        with open(os.path.join(home, "images", "index.json"), "rb") as handle:
            index = leanjson.loads(handle.read().decode("utf-8"))
        entries = [(str(e.get("digest", "")), (e.get("annotations") or {}).get(storefiles.ANN_REF_NAME))
                   for e in index["manifests"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # the store's own reader says what is wrong
    digest = next((d for d, n in entries if n == name), None)
    if digest is None:
        return None
    return digest, [n for d, n in entries if d == digest and n]


def _json_blob(home: str, digest: str) -> Any:
    """A manifest or config blob of this store, checked against its digest and parsed; None when it is
    missing, damaged or elsewhere (the store reports and repairs those)."""
    from hpcbox import leanjson

    hexpart = digest[7:] if digest.startswith("sha256:") else ""
    if len(hexpart) != 64 or not _HEX.issuperset(hexpart):
        return None
    try:
        with open(os.path.join(home, "images", "blobs", "sha256", hexpart), "rb") as handle:
            data = handle.read()
        return leanjson.loads(data.decode("utf-8")) if storefiles.sha256_digest(data) == digest else None
    except (OSError, ValueError):
        return None


def _build(home: str, meta: Dict[str, Any]) -> str:
    """``ContainerStore._build`` for a container removed after one run: made in ``.create-<id>`` under
    its create lock, its record written without fsync (``durable=False``), renamed into place under
    the containers lock."""
    from hpcbox.containers.fs import remove_tree

    cid = os.urandom(32).hex()
    meta.update(id=cid, created=storefiles.now())
    base, locks = os.path.join(home, "containers"), os.path.join(home, "locks")
    os.makedirs(base, exist_ok=True)
    work = os.path.join(base, f"{storefiles.CREATE_PREFIX}{cid}")
    create_lock = os.path.join(locks, f"create-{cid}.lock")
    try:
        with FileLock(create_lock):
            try:
                os.mkdir(work)
                for part in ("rootfs", "upper", "work"):
                    os.mkdir(os.path.join(work, part))
                with open(os.path.join(work, storefiles.CONTAINER_META), "wb") as handle:
                    handle.write(storefiles.json_document(meta))
                with FileLock(os.path.join(locks, "containers.lock")):
                    os.rename(work, os.path.join(base, cid))
            except BaseException:
                try:
                    remove_tree(work)
                except OSError:
                    pass
                raise
    finally:  # no stale lock file, also after a failure
        try:
            os.unlink(create_lock)
        except OSError:
            pass
    return os.path.join(base, cid)


def _remove(home: str, container: LeanContainer) -> None:
    """``ContainerStore.remove(id, force=True)`` of the container this run made: renamed out of the
    list under the containers lock, then deleted."""
    from hpcbox.containers.fs import remove_tree

    try:
        with FileLock(os.path.join(home, "locks", "containers.lock")):
            doomed = os.path.join(home, "containers", f"{storefiles.REMOVE_PREFIX}{container.id}")
            os.rename(container.dir, doomed)
        remove_tree(doomed)
    except Exception as exc:  # (OSError, ContainerError) the run's own status counts, as with `run`'s --rm
        import sys

        sys.stderr.write(f"hpcbox: warning: --rm: cannot remove container {container.short_id}: {exc}\n")
