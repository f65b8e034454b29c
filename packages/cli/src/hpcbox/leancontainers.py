"""The store's containers as the lean run paths read them (:mod:`hpcbox.quick`, :mod:`hpcbox.quickimage`):
``container.json`` files read without json, pathlib or the store's modules, paths as strings, found as
``ContainerStore.get`` finds them (``tests/test_quick.py`` compares the two)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing for the checker only: this module avoids it
if TYPE_CHECKING:
    from typing import Any, Dict, List


_HEX = frozenset("0123456789abcdef")


def _is_id(text: str) -> bool:
    return len(text) == 64 and _HEX.issuperset(text)


class LeanContainer:
    """The parts of :class:`hpcbox.containers.Container` that `hpcbox run` uses, paths as strings."""

    def __init__(self, directory: str, meta: Dict[str, Any]) -> None:
        self.dir = directory
        self._meta = meta

    id = property(lambda self: self._meta["id"])
    short_id = property(lambda self: self._meta["id"][:12])
    names = property(lambda self: list(self._meta.get("names") or []))
    image_config = property(lambda self: dict(self._meta.get("image_config") or {}))
    created = property(lambda self: str(self._meta.get("created") or ""))
    settings = property(lambda self: dict(self._meta.get("settings") or {}))
    storage = property(lambda self: str(self._meta.get("storage") or "copy"))
    nvidia = property(lambda self: self._meta.get("nvidia"))
    rootfs = property(lambda self: f"{self.dir}/rootfs")
    config_path = property(lambda self: f"{self.dir}/config.json")
    lower = property(lambda self: self._meta.get("lower"))  # an overlay container's (hpcbox.quickimage)
    upper = property(lambda self: f"{self.dir}/upper")
    work = property(lambda self: f"{self.dir}/work")

    def in_use(self) -> _InUse:
        return _InUse(f"{self.dir}/.in-use.lock")


class _InUse:
    """``Container.in_use()``: a shared flock on ``.in-use.lock`` while the container runs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _InUse:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)


def _read_meta(directory: str) -> Dict[str, Any] | None:
    from hpcbox import leanjson

    try:
        with open(f"{directory}/container.json", "rb") as handle:
            meta = leanjson.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):  # (UnicodeDecodeError too: json.loads would judge other encodings)
        return None
    return meta if isinstance(meta, dict) and _is_id(str(meta.get("id", ""))) else None


def scan_containers(home: str, strict: bool = False) -> List[LeanContainer] | None:
    """The store's containers, oldest first, as ``ContainerStore.list`` finds them; None when one could
    not be read here (let the store judge it) and, with *strict*, when a container is damaged or the
    directory cannot be listed."""
    base = f"{home}/containers"
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return [] if strict else None
    except OSError:
        return None
    found = []
    for name in names:
        if _is_id(name):
            meta = _read_meta(f"{base}/{name}")
            if meta is None:
                if strict or os.path.isfile(f"{base}/{name}/container.json"):
                    return None  # unreadable here, or damaged: let the store judge it
                continue
            if meta["id"] == name:
                found.append(LeanContainer(f"{base}/{name}", meta))
            elif strict:
                return None
    found.sort(key=lambda c: (c.created, c.id))
    return found


def find_container(home: str, text: str) -> LeanContainer | None:
    """The container *text* names (name, full id, unique id prefix), or None: none, or not sure."""
    found = scan_containers(home)
    if found is None:
        return None
    for c in found:
        if text in c.names:
            return c
    for c in found:
        if c.id == text:
            return c
    if text and _HEX.issuperset(text):
        hits = [c for c in found if c.id.startswith(text)]
        if len(hits) == 1:
            return hits[0]
    return None
