"""Apply an ordered list of OCI/Docker layer blobs to a directory: exact, unprivileged, safe, streamed.

Safety model in one sentence: every path is resolved from a directory fd of the target, one component
at a time, with O_NOFOLLOW, and every change is made with `dir_fd=` on the last component, so no
symlink (planted by an earlier entry or layer) is ever followed; `..` and absolute names are refused.

Over 500 lines: one applier, whose entry kinds (files, sparse files, directories, links, whiteouts)
all walk and write by the same directory-fd rules; the tar reading is in :mod:`.tarstream`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Dict, List, Optional, Sequence, Set, Tuple, Type, Union, cast

from hpcbox_layers.errors import CorruptLayerError, ExtractionLimitError, LayerError, UnsafeEntryError
from hpcbox_layers.mediatypes import check_media_type, open_stream
from hpcbox_layers.prefetch import Prefetch, _OpenError
from hpcbox_layers.tarstream import ForwardReader, members

PathLike = Union[str, "os.PathLike[str]"]
Source = Union[PathLike, BinaryIO]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_AUFS_META_PREFIX = ".wh..wh."

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_NEWFILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 1 << 20
_MAX_CACHED_FDS = 512
_FILE_TYPES = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE))
_SKIPPED_TYPES = frozenset((tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE))
_GNU_VOLUME_LABEL = b"V"  # an archive's name, not a member
#: a layer may write at most this many times its compressed size (gzip's own limit is ~1030x; real
#: layers stay below 20x) and never less than _MIN_LIMIT; holes of sparse files do not count
DEFAULT_MAX_EXPANSION = 100.0
_MIN_LIMIT = 256 << 20
_CHECK_FREE_ABOVE = 64 << 20  # entries this big are checked against the free space first

Path = Tuple[str, ...]


@dataclass(frozen=True)
class Layer:
    """One layer blob: a path or a readable binary file object, and its media type (None: sniff it)."""

    source: Source
    media_type: Optional[str] = None


@dataclass
class ApplyReport:
    """What `apply_layers` did. Names are relative to the target, without a leading `./`."""

    layers: int = 0
    #: files, directories, symlinks and hardlinks written (whiteouts and skipped entries not included)
    entries: int = 0
    #: bytes of regular-file content written
    bytes_written: int = 0
    #: device nodes and FIFOs that an unprivileged user cannot create (and hardlinks to them)
    skipped_devices: List[str] = field(default_factory=list)
    #: files given u+rw and directories given u+rwx that the image did not have
    permissions_fixed: int = 0
    #: setuid/setgid bits removed (entry names)
    setid_stripped: List[str] = field(default_factory=list)
    #: whiteout files and opaque markers applied
    whiteouts: int = 0
    #: entries whose extended attributes (and so file capabilities, ACLs) were not applied
    xattrs_ignored: int = 0


LayerSpec = Union[Layer, Source, Tuple[Source, Optional[str]]]
ProgressCallback = Callable[[int, int, ApplyReport], None]


def apply_layers(
    target_dir: PathLike,
    layers: Sequence[LayerSpec],
    *,
    on_progress: Optional[ProgressCallback] = None,
    max_expansion: Optional[float] = None,
) -> ApplyReport:
    """Apply `layers` in order (lowest first) to `target_dir`, created if missing.

    `on_progress(done, total, report)` is called after each layer. Raises `UnsafeEntryError` for an
    entry that would reach outside the target, `CorruptLayerError` for an unreadable blob,
    `UnsupportedMediaTypeError` before anything is written if a media type is not a layer type,
    `ExtractionLimitError` when a layer given by path would write more than `max_expansion` times
    its size (at least 256 MiB; default: $HPCBOX_MAX_LAYER_EXPANSION, else 100; 0: no limit) or an
    entry bigger than the free space (the entry being written is removed). Sparse files are
    written with holes, which do not count.
    """
    specs = [_as_layer(x, i) for i, x in enumerate(layers)]
    for spec in specs:
        check_media_type(spec.media_type)
    report = ApplyReport()
    applier = _Applier(os.fspath(target_dir), report)
    applier.max_expansion = _expansion_limit(max_expansion)
    ahead: Optional[Prefetch] = None
    try:
        for index, spec in enumerate(specs):
            current, ahead = ahead, None
            following = specs[index + 1] if index + 1 < len(specs) else None
            if following is not None and isinstance(following.source, (str, os.PathLike)):
                # decompress the next layer while this one is written (the codecs release the GIL)
                ahead = Prefetch(following.source, following.media_type)
            applier.apply(index, spec, current)
            report.layers += 1
            if on_progress is not None:
                on_progress(index + 1, len(specs), report)
        applier.finish()
    finally:
        if ahead is not None:
            ahead.close()
        applier.close()
    return report


def _expansion_limit(value: Optional[float]) -> Optional[float]:
    if value is None:
        text = os.environ.get("HPCBOX_MAX_LAYER_EXPANSION", "")
        try:
            value = float(text) if text else DEFAULT_MAX_EXPANSION
        except ValueError:
            raise LayerError(f"HPCBOX_MAX_LAYER_EXPANSION={text!r} is not a number; set it to a factor "
                             "such as 100, or 0 for no limit") from None
    return value if value > 0 else None


def _as_layer(item: LayerSpec, index: int) -> Layer:
    if isinstance(item, Layer):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        return Layer(item[0], item[1])
    if isinstance(item, (str, os.PathLike)) or hasattr(item, "read"):
        return Layer(item)
    raise TypeError(
        f"layer {index}: expected a Layer, a path, a binary file object or a (source, media_type) tuple, "
        f"got {type(item).__name__}"
    )


def _decompress_errors() -> Tuple[Type[BaseException], ...]:
    errors: List[Type[BaseException]] = [tarfile.TarError, EOFError]
    try:
        from isal import isal_zlib

        errors.append(isal_zlib.error)  # type: ignore[arg-type]  # isal's stub calls the class an instance
    except ImportError:  # without isal, gzip is inflated by zlib (below)
        pass
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover - zstandard is a dependency
        pass
    import gzip
    import zlib

    errors += [zlib.error, gzip.BadGzipFile]
    return tuple(errors)


def _mtime_ns(mtime: Union[int, float]) -> int:
    if isinstance(mtime, int):
        return mtime * 1_000_000_000
    return round(mtime * 1e9)


def _umask() -> Optional[int]:
    """The process umask, read without changing it (Linux >= 4.7); None where it cannot be read."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


class _Applier:
    def __init__(self, target: str, report: ApplyReport):
        os.makedirs(target, exist_ok=True)
        self.report = report
        self.root = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # Directory fds by path, all opened from `root` with O_NOFOLLOW; dropped when the path goes.
        self.fds: Dict[Path, int] = {(): self.root}
        self.dir_mtimes: Dict[Path, int] = {}
        self.skipped: Set[Path] = set()
        self.index = 0
        self.seen: Set[Path] = set()
        self.errors = _decompress_errors()
        self.blob_errors: Tuple[Type[BaseException], ...] = (LayerError, *self.errors)
        self.umask = _umask()
        self.max_expansion: Optional[float] = DEFAULT_MAX_EXPANSION
        self.budget: Optional[int] = None  # bytes this layer may still write (None: no limit)
        self.limit = 0

    # -- layers ---------------------------------------------------------------------------------

    def apply(self, index: int, spec: Layer, prefetched: Optional[Prefetch] = None) -> None:
        self.index = index
        self.seen = set()
        self.budget = None
        source = spec.source
        label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"
        if prefetched is not None:
            try:
                self._entries(index, label, prefetched, None)
            finally:
                prefetched.close()
            return
        if isinstance(source, (str, os.PathLike)):
            try:
                raw = open(source, "rb", buffering=_COPY_CHUNK)  # noqa: SIM115 - closed in `finally`
            except OSError as e:
                raise LayerError(f"layer {index}: cannot open {label}: {e.strerror}; check the path") from e
        else:
            raw = source
        if raw is not source:
            self._limit(os.fstat(raw.fileno()).st_size)
        try:
            self._entries(index, label, raw, spec.media_type)
        finally:
            if raw is not source:
                raw.close()

    def _limit(self, blob_size: int) -> None:
        """The layer's extraction budget, from the size of its blob (a path's: we opened it)."""
        if self.max_expansion is not None:
            self.limit = max(int(blob_size * self.max_expansion), _MIN_LIMIT)
            self.budget = self.limit

    def _entries(self, index: int, label: str, raw: Union[BinaryIO, Prefetch],
                 media_type: Optional[str]) -> None:
        """Apply the entries of one layer: *raw* is its blob (or a Prefetch, already decompressing)."""
        try:
            try:
                if isinstance(raw, Prefetch):
                    stream, closer = cast(BinaryIO, raw.opened()), None  # a Prefetch reads like a file
                    self._limit(raw.blob_size)
                else:
                    stream, closer = open_stream(raw, media_type)
            except _OpenError as e:
                raise LayerError(
                    f"layer {index}: cannot open {label}: {e.error.strerror}; check the path"
                ) from e.error
            except OSError as e:
                raise LayerError(f"layer {index}: cannot read {label}: {e}") from e
            try:
                for info, reader, tf in members(stream):
                    self._entry(info, reader, tf)
                # Read the end of the stream too: gzip and zstd verify their checksums there.
                while stream.read(_COPY_CHUNK):
                    pass
            finally:
                if closer is not None:
                    closer.close()
        except self.errors as e:
            raise CorruptLayerError(
                f"layer {index} ({label}) is not a valid tar stream: {str(e) or type(e).__name__}; "
                "the blob is truncated or damaged, download it again",
                layer_index=index,
            ) from e

    def finish(self) -> None:
        """Set directory mtimes, now that nothing will be written into them any more."""
        for path, ns in self.dir_mtimes.items():
            try:
                if not path:
                    os.utime(self.root, ns=(ns, ns))
                    continue
                parent = self._dir(path[:-1], "/".join(path), create=False)
                if parent is not None:
                    os.utime(path[-1], ns=(ns, ns), dir_fd=parent, follow_symlinks=False)
            except (OSError, OverflowError, ValueError):
                pass  # an mtime the filesystem cannot store is not worth failing the image for

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    # -- entries --------------------------------------------------------------------------------

    def _split(self, text: str, what: str = "name", entry: Optional[str] = None) -> Path:
        entry = text if entry is None else entry
        if text.startswith("/"):
            raise UnsafeEntryError(entry, self.index, f"absolute {what} {text!r}; entries must be relative")
        parts = [c for c in text.split("/") if c and c != "."]
        if ".." in parts:
            raise UnsafeEntryError(entry, self.index, f"'..' in the {what} {text!r} could lead outside")
        return tuple(parts)

    def _entry(self, info: tarfile.TarInfo, reader: ForwardReader, tf: tarfile.TarFile) -> None:
        name = info.name
        path = self._split(name)
        if len(self.fds) > _MAX_CACHED_FDS:
            self._drop_fds()
        try:
            if ".wh." in name:
                if any(c.startswith(_AUFS_META_PREFIX) and c != OPAQUE_MARKER for c in path):
                    return  # aufs bookkeeping (.wh..wh.plnk/…, .wh..wh.aufs): not part of the image
                base = path[-1] if path else ""
                if base.startswith(WHITEOUT_PREFIX):
                    self._whiteout(path, name)
                    return
                if any(c.startswith(WHITEOUT_PREFIX) for c in path):
                    raise CorruptLayerError(
                        f"layer {self.index}: entry {name!r} lies inside a whiteout name",
                        layer_index=self.index,
                        entry=name,
                    )
            if info.pax_headers and any(k.startswith("SCHILY.xattr.") for k in info.pax_headers):
                self.report.xattrs_ignored += 1
            if not path or info.type == _GNU_VOLUME_LABEL:
                if info.type == tarfile.DIRTYPE:
                    os.fchmod(self.root, self._fix_mode(info.mode, True, "."))
                    self.dir_mtimes[()] = _mtime_ns(info.mtime)
                return
            parent = self._dir(path[:-1], name, create=True)
            assert parent is not None  # create=True makes the missing parents
            self._mark(path)
            kind = info.type
            if kind in _FILE_TYPES:
                self._file(parent, path, info, reader, tf)
            elif kind == tarfile.DIRTYPE:
                self._mkdir(parent, path, info)
            elif kind == tarfile.SYMTYPE:
                self._symlink(parent, path, info)
            elif kind == tarfile.LNKTYPE:
                self._hardlink(parent, path, info)
            elif kind in _SKIPPED_TYPES:
                self._remove(parent, path, missing_ok=True)
                self.skipped.add(path)
                self.report.skipped_devices.append("/".join(path))
            else:  # POSIX: an unknown type is read as a regular file
                self._file(parent, path, info, reader, tf)
        except self.blob_errors:
            raise  # gzip.BadGzipFile is an OSError, but the blob's fault, not the filesystem's
        except OSError as e:
            raise LayerError(
                f"layer {self.index}: cannot write entry {name!r}: {e.strerror or e}; "
                "check free space and permissions of the target directory"
            ) from e

    def _mark(self, path: Path) -> None:
        """Remember that this layer wrote `path` (and so its parents): its own whiteouts spare them."""
        seen = self.seen
        if self.skipped:
            self.skipped.discard(path)
        while path and path not in seen:
            seen.add(path)
            path = path[:-1]

    def _fix_mode(self, mode: int, is_dir: bool, name: str) -> int:
        mode &= 0o7777
        if mode & 0o6000:
            self.report.setid_stripped.append(name)
        if is_dir:
            mode &= 0o1777
            fixed = mode | 0o700
        else:
            mode &= 0o777
            fixed = mode | 0o600
        if fixed != mode:
            self.report.permissions_fixed += 1
        return fixed

    def _file(
        self, parent: int, path: Path, info: tarfile.TarInfo, reader: ForwardReader, tf: tarfile.TarFile
    ) -> None:
        leaf = path[-1]
        mode = self._fix_mode(info.mode, False, "/".join(path))
        # Created with its final mode where the umask leaves it whole (0644, 0755 under umask 022: nearly
        # every file), saving an fchmod; else created 0600 and fchmod'ed below.
        direct = self.umask is not None and not mode & self.umask
        create_mode = mode if direct else 0o600
        try:
            fd = os.open(leaf, _O_NEWFILE, create_mode, dir_fd=parent)
        except FileExistsError:
            self._remove(parent, path)
            fd = os.open(leaf, _O_NEWFILE, create_mode, dir_fd=parent)
        try:
            size = info.size
            if info.issparse():
                self._sparse(fd, info, reader)
            elif size:
                self._spend(size, info.name, fd)
                # The member's data is next in the stream: read it straight from there, in big chunks
                # (no ExFileObject layer and its extra copy).
                src = reader
                remaining = size
                while remaining:
                    chunk = src.read(min(remaining, _COPY_CHUNK))
                    if not chunk:
                        raise CorruptLayerError(
                            f"layer {self.index}: entry {info.name!r} is truncated",
                            layer_index=self.index,
                            entry=info.name,
                        )
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
                    remaining -= len(chunk)
                self.report.bytes_written += size
            if not direct:
                os.fchmod(fd, mode)
            ns = _mtime_ns(info.mtime)
            try:
                os.utime(fd, ns=(ns, ns))
            except (OverflowError, ValueError):
                pass
        except ExtractionLimitError:
            os.close(fd)
            fd = -1
            with contextlib.suppress(OSError):
                os.unlink(leaf, dir_fd=parent)  # the entry that would not fit goes at once
            raise
        finally:
            if fd >= 0:
                os.close(fd)
        self.report.entries += 1

    def _spend(self, size: int, name: str, fd: int) -> None:
        """Count *size* bytes of data against the layer's limit and, for big entries, the free space."""
        if self.budget is not None:
            self.budget -= size
            if self.budget < 0:
                raise ExtractionLimitError(
                    f"layer {self.index} would write more than {self.limit} bytes ({self.max_expansion:g} "
                    f"times its compressed size) at entry {name!r}; stopped before the disk fills (a "
                    "decompression bomb, or an image with huge files: if you trust it, raise the limit "
                    "with HPCBOX_MAX_LAYER_EXPANSION=FACTOR, 0 for none)",
                    layer_index=self.index, limit=self.limit)
        if size >= _CHECK_FREE_ABOVE:
            st = os.fstatvfs(fd)
            free = st.f_bavail * st.f_frsize
            if size > free:
                raise ExtractionLimitError(
                    f"layer {self.index}: entry {name!r} needs {size} bytes, the filesystem has {free} "
                    "free; free some space or put the store on a larger filesystem",
                    layer_index=self.index, limit=free)

    def _sparse(self, fd: int, info: tarfile.TarInfo, reader: ForwardReader) -> None:
        """A sparse member: only its data blocks are written (the holes stay holes), then the size."""
        blocks = cast(List[Tuple[int, int]], list(info.sparse or []))  # (offset, size) pairs
        self._spend(sum(n for _, n in blocks), info.name, fd)
        reader.seek(info.offset_data)  # the data blocks follow one another from here
        written = 0
        for offset, length in blocks:
            if offset < 0 or length < 0 or offset + length > info.size:
                raise CorruptLayerError(f"layer {self.index}: sparse entry {info.name!r} has a block "
                                        f"beyond its size", layer_index=self.index, entry=info.name)
            done = 0
            while done < length:
                chunk = reader.read(min(length - done, _COPY_CHUNK))
                if not chunk:
                    raise CorruptLayerError(f"layer {self.index}: entry {info.name!r} is truncated",
                                            layer_index=self.index, entry=info.name)
                view = memoryview(chunk)
                while view:
                    n = os.pwrite(fd, view, offset + done)
                    view = view[n:]
                    done += n
            written += length
        os.ftruncate(fd, info.size)
        self.report.bytes_written += written

    def _mkdir(self, parent: int, path: Path, info: tarfile.TarInfo) -> None:
        fd = self.fds.get(path)
        if fd is None:
            leaf = path[-1]
            try:
                os.mkdir(leaf, 0o700, dir_fd=parent)
            except FileExistsError:
                st = os.stat(leaf, dir_fd=parent, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    self._remove(parent, path)
                    os.mkdir(leaf, 0o700, dir_fd=parent)
            fd = os.open(leaf, _O_DIR, dir_fd=parent)
            self.fds[path] = fd
        os.fchmod(fd, self._fix_mode(info.mode, True, "/".join(path)))
        self.dir_mtimes[path] = _mtime_ns(info.mtime)
        self.report.entries += 1

    def _symlink(self, parent: int, path: Path, info: tarfile.TarInfo) -> None:
        leaf = path[-1]
        try:
            os.symlink(info.linkname, leaf, dir_fd=parent)
        except FileExistsError:
            self._remove(parent, path)
            os.symlink(info.linkname, leaf, dir_fd=parent)
        ns = _mtime_ns(info.mtime)
        try:
            os.utime(leaf, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)
        except (OverflowError, ValueError):
            pass
        self.report.entries += 1

    def _hardlink(self, parent: int, path: Path, info: tarfile.TarInfo) -> None:
        name = info.name
        target = self._split(info.linkname, "hardlink target", name)
        if target == path or not target:
            return
        if target in self.skipped:
            self._remove(parent, path, missing_ok=True)
            self.skipped.add(path)
            self.report.skipped_devices.append("/".join(path))
            return
        tparent = self._dir(target[:-1], name, create=False)
        missing = CorruptLayerError(
            f"layer {self.index}: hardlink {name!r} points to {info.linkname!r}, which does not exist",
            layer_index=self.index,
            entry=name,
        )
        if tparent is None:
            raise missing
        try:
            st = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
        except FileNotFoundError:
            raise missing from None
        if stat.S_ISDIR(st.st_mode):
            raise CorruptLayerError(
                f"layer {self.index}: hardlink {name!r} points to the directory {info.linkname!r}",
                layer_index=self.index,
                entry=name,
            )
        leaf = path[-1]
        try:
            os.link(target[-1], leaf, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        except FileExistsError:
            if target[: len(path)] == path:
                raise missing from None  # replacing `path` removes the target with it
            self._remove(parent, path)
            os.link(target[-1], leaf, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        self.report.entries += 1

    def _whiteout(self, path: Path, name: str) -> None:
        base = path[-1]
        if base == OPAQUE_MARKER:
            self.report.whiteouts += 1
            directory = self._dir(path[:-1], name, create=False)
            if directory is not None:
                self._prune(directory, path[:-1])
            return
        real = base[len(WHITEOUT_PREFIX) :]
        if real in ("", ".", ".."):
            raise UnsafeEntryError(name, self.index, f"whiteout of {real!r} names no entry of its directory")
        self.report.whiteouts += 1
        victim = (*path[:-1], real)
        if victim in self.seen:
            return  # a whiteout only hides what lower layers wrote
        parent = self._dir(path[:-1], name, create=False)
        if parent is not None:
            self._remove(parent, victim, missing_ok=True)

    def _prune(self, directory: int, path: Path) -> None:
        """Opaque directory: remove what lower layers put under `path`, keep what this layer wrote."""
        with os.scandir(directory) as it:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for child, is_dir in children:
            cpath = (*path, child)
            if cpath not in self.seen:
                self._remove(directory, cpath)
            elif is_dir:
                fd = self._dir(cpath, "/".join(cpath), create=False)
                if fd is not None:
                    self._prune(fd, cpath)

    # -- the filesystem, without ever following a symlink -----------------------------------------

    def _dir(self, path: Path, name: str, *, create: bool) -> Optional[int]:
        """An fd of directory `path`, walked from the root with O_NOFOLLOW; missing parents are made
        (mode 0755) when `create`, else None is returned. A symlink on the way is an unsafe entry."""
        fds = self.fds
        fd = fds.get(path)
        if fd is not None:
            return fd
        known = len(path) - 1
        while path[:known] not in fds:  # the root, (), is always there
            known -= 1
        fd = fds[path[:known]]
        for depth in range(known + 1, len(path) + 1):
            fd = self._child_dir(fd, path[:depth], name, create)
            if fd is None:
                return None
        return fd

    def _child_dir(self, parent: int, path: Path, name: str, create: bool) -> Optional[int]:
        leaf = path[-1]
        try:
            fd = os.open(leaf, _O_DIR, dir_fd=parent)
        except OSError as e:
            if e.errno == errno.ENOENT:
                if not create:
                    return None
            else:
                st = os.stat(leaf, dir_fd=parent, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    raise UnsafeEntryError(
                        name,
                        self.index,
                        f"its parent {'/'.join(path)!r} is a symlink; writing through it could escape",
                    ) from None
                if stat.S_ISDIR(st.st_mode):
                    raise
                if not create:
                    return None
                os.unlink(leaf, dir_fd=parent)  # a file where this layer needs a directory
            os.mkdir(leaf, 0o700, dir_fd=parent)
            fd = os.open(leaf, _O_DIR, dir_fd=parent)
            os.fchmod(fd, 0o755)
        self.fds[path] = fd
        return fd

    def _drop_fds(self) -> None:
        for path, fd in list(self.fds.items()):
            if path:
                os.close(fd)
                del self.fds[path]

    def _remove(self, parent: int, path: Path, *, missing_ok: bool = False) -> None:
        leaf = path[-1]
        try:
            st = os.stat(leaf, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            if missing_ok:
                return
            raise
        if stat.S_ISDIR(st.st_mode):
            self._forget(path)
            _rmtree(parent, leaf)
        else:
            os.unlink(leaf, dir_fd=parent)

    def _forget(self, path: Path) -> None:
        n = len(path)
        for key in [k for k in self.fds if k[:n] == path]:
            os.close(self.fds.pop(key))
        for key in [k for k in self.dir_mtimes if k[:n] == path]:
            del self.dir_mtimes[key]


def _rmtree(parent: int, name: str) -> None:
    """Remove directory `name` under `parent` and all in it, never following a symlink; iterative, so
    that no depth of tree can exhaust the interpreter's recursion limit."""
    stack = [(parent, name, os.open(name, _O_DIR, dir_fd=parent))]
    try:
        while stack:
            up, dirname, fd = stack[-1]
            subdir = None
            with os.scandir(fd) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        subdir = entry.name
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if subdir is not None:  # go down; this directory is scanned again when we are back
                stack.append((fd, subdir, os.open(subdir, _O_DIR, dir_fd=fd)))
                continue
            stack.pop()
            os.close(fd)
            os.rmdir(dirname, dir_fd=up)
    finally:
        for _, _, fd in stack:
            os.close(fd)


__all__ = ["ApplyReport", "Layer", "apply_layers"]
