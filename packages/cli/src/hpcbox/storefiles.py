"""The store's on-disk names and the small readers that `hpcbox run` needs before anything else.

:mod:`hpcbox.store` and :mod:`hpcbox.containers` (the store's classes) work with pathlib, json, re and
typing: ~10 ms of imports, half the start of `hpcbox run CONTAINER`. What the lean run paths
(:mod:`hpcbox.quick`, :mod:`hpcbox.quickimage`) share with those classes lives here, on plain string
paths, and both sides use it: the names of files and directories, the short-name expansion of image
references, the digest function, the overlay probe's record, the new container's record.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing costs milliseconds of every `hpcbox run`: checkers only
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional

# -- names ------------------------------------------------------------------------------------------

CONTAINER_META = "container.json"
CREATE_PREFIX = ".create-"  # a container being made (its create lock held), renamed to <id> when whole
REMOVE_PREFIX = ".rm-"      # a container being removed: renamed first, so that it is never half listed
IMAGES_ROOTFS = "images-rootfs"
PROBE_RECORD = ".overlay-probe"
ANN_REF_NAME = "org.opencontainers.image.ref.name"
STORAGE_OVERLAY = "overlay"
CREATE_MODE_ENV = "HPCBOX_CREATE_MODE"  # the store-wide default storage of new containers


def image_rootfs_dir(home: str, manifest_digest: str) -> str:
    """The shared, once-flattened rootfs of an image (overlay containers' lower directory)."""
    return os.path.join(home, IMAGES_ROOTFS, manifest_digest.split(":", 1)[-1])


# -- image names --------------------------------------------------------------------------------------

def qualified(text: str) -> bool:
    """*text* names its registry host (``host.domain``, ``host:port``, ``localhost``) and exactly one of
    a tag and a digest, as the stored names do."""
    host, slash, rest = text.partition("/")
    if not slash or not ("." in host or ":" in host or host == "localhost"):
        return False
    return ("@" in rest) != (":" in rest.rsplit("/", 1)[-1].split("@", 1)[0])


def familiar(text: str) -> Optional[str]:
    """The canonical name of a Docker Hub name typed the short way (``alpine``, ``user/app``, either
    with a tag), as the registry package's parser gives it; None for anything else (a registry
    host, a digest), which is left to the parser."""
    first, slash, _ = text.partition("/")
    if (slash and ("." in first or ":" in first or first == "localhost")) or "@" in text or not text:
        return None
    name = text if slash else f"library/{text}"
    return f"docker.io/{name}" if ":" in name.rsplit("/", 1)[-1] else f"docker.io/{name}:latest"


def stored_name(text: str) -> Optional[str]:
    """The index name *text* stands for when that needs no parser (typed exactly so, or a Docker Hub
    short name); None: only the registry package's parser can tell."""
    return text if qualified(text) else familiar(text)


# -- digests ------------------------------------------------------------------------------------------

def _sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 (``_sha256``, ``_sha2`` from 3.12): hashlib loads OpenSSL first, ~3.5 ms
    of every `hpcbox images` or `hpcbox run --rm IMAGE` that checks a manifest of a few kB."""
    for name in ("_sha256", "_sha2"):
        try:
            return __import__(name).sha256  # type: ignore[no-any-return]
        except ImportError:
            pass
    import hashlib

    return hashlib.sha256


def sha256_digest(data: bytes) -> str:
    return "sha256:" + str(_sha256()(data).hexdigest())


# -- the overlay probe's record -------------------------------------------------------------------------

def probe_record(directory: str) -> str:
    """Where the success of the overlay probe for *directory* (the containers directory) is recorded:
    beside it, in the store's home, never in it."""
    return os.path.join(os.path.dirname(os.path.abspath(directory)), PROBE_RECORD)


def probe_key(directory: str) -> Optional[str]:
    """What the probe's success depends on, as one line (None when it cannot be told): the kernel
    release, the directory's device, the runner's path, size and mtime."""
    try:
        import hpcbox_engine_runc as runc

        # (runner_file: the path as a string, without pathlib; an older engine-runc has runner_path only)
        runner = runc.runner_file() if hasattr(runc, "runner_file") else str(runc.runner_path())
        found, where = os.stat(runner), os.stat(directory)
    except (ImportError, OSError):
        return None
    return f"{os.uname().release} {where.st_dev} {runner} {found.st_size} {found.st_mtime_ns}\n"


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def overlay_recorded(directory: str) -> bool:
    """Whether the probe's recorded success still holds for *directory* (no probe is run here)."""
    key = probe_key(directory)
    return key is not None and read_text(probe_record(directory)) == key


# -- a new container's record ---------------------------------------------------------------------------

def now() -> str:
    """The time now in UTC as ``2026-12-04T05:40:00.123456Z``, without datetime (~1.5 ms to import)."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns // 1000 % 10**6:06d}Z"


def new_container_meta(reference: str, manifest_digest: str, config_digest: str, config: Dict[str, Any], *,
                       names: List[str], storage: Optional[str]) -> Dict[str, Any]:
    """``container.json`` of a new container, its keys in the order the file shows them (``id`` and
    ``created`` are set when it is built; an overlay container's ``lower`` once its image rootfs is
    there)."""
    meta: Dict[str, Any] = {
        "id": "",
        "names": list(names),
        "image": {"reference": reference, "manifest": manifest_digest, "config": config_digest},
        "image_config": config,
        "created": "",
        "protected": False,
        "execmode": None,
        "settings": {},
    }
    if storage == STORAGE_OVERLAY:
        meta["storage"] = storage
    return meta


def image_reference(tags: List[str], names: List[str], typed: str) -> str:
    """The image a container records it was made from: the image's first tag, else its first name
    (a digest reference), else what the user typed."""
    return tags[0] if tags else (names[0] if names else typed)


def json_document(value: Any) -> bytes:
    """*value* as the store writes its JSON files (indented, keys in their order, a final newline)."""
    from hpcbox import leanjson

    return leanjson.dumps(value, indent=2).encode() + b"\n"


def remove_plain_tree(top: str) -> bool:
    """Remove the directory *top* and what it holds, where every entry is the caller's to remove (the
    usual tree of a container that ran once; a directory of the caller's without u+rwx, as overlayfs
    leaves ``work/work``, gets them back); False, with what is left still there, at the first entry
    that is not the caller's to remove (shutil and the id map's runner are for those)."""
    try:
        st = os.lstat(top)
        if st.st_uid == os.geteuid() and st.st_mode & 0o700 != 0o700:
            os.chmod(top, st.st_mode & 0o7777 | 0o700)
        with os.scandir(top) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if not remove_plain_tree(entry.path):
                        return False
                else:
                    os.unlink(entry.path)
        os.rmdir(top)
    except OSError:
        return False
    return True
