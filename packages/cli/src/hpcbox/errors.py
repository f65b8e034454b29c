"""Every failure becomes one line ``hpcbox: error: <problem>; <fix>`` and an exit code.

Exit codes (the table is in the README and docs/hpc.md):
  0 success, 1 other failure, 2 usage or bad reference syntax, 3 image/manifest/platform/container
  not found, 4 authentication or authorization, 5 network, TLS or registry server, 6 integrity (digest
  mismatch, damaged store or blob, malformed or hostile layer), 7 local storage (disk full, file size
  limit, permissions, extraction limit), 125 an engine could not start the container, 130 interrupted.

The mapping goes by ``isinstance`` on each package's exported base classes, most specific first, so
a new subclass gets its family's code and fix; only an exception that belongs to no package reaches
the "unexpected ... report the traceback" line, which is meant for real bugs.
"""

from __future__ import annotations

import errno

from hpcbox_oci_bundle import contract

TYPE_CHECKING = False  # typing costs ~2 ms to import: only type checkers read these names
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Tuple

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_NETWORK = 5
EXIT_INTEGRITY = 6
EXIT_STORAGE = 7
EXIT_ENGINE = contract.EXIT_ENGINE
EXIT_INTERRUPTED = 130

#: every code hpcbox itself exits with (``run`` passes the container's own status through as well)
DOCUMENTED_CODES = (EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_AUTH, EXIT_NETWORK,
                    EXIT_INTEGRITY, EXIT_STORAGE, EXIT_ENGINE, EXIT_INTERRUPTED)


class HpcboxError(Exception):
    """An error of the CLI itself: *problem* and *fix* are joined on one line."""

    def __init__(self, problem: str, fix: str = "", code: int = EXIT_FAILURE):
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.code = code


class UsageError(HpcboxError):
    def __init__(self, problem: str, fix: str = "see 'hpcbox COMMAND -h'"):
        super().__init__(problem, fix, EXIT_USAGE)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _with_fix(exc: BaseException, fix: str) -> str:
    text = _one_line(str(exc)) or type(exc).__name__
    return text if "; " in text else f"{text}; {fix}"


def _os_error(exc: OSError) -> Tuple[str, int]:
    where = f" writing {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on device{where}; free some space or put the store on a larger "
                f"filesystem with --home DIR or HPCBOX_HOME", EXIT_STORAGE)
    if exc.errno == errno.EFBIG:
        return (f"file too large{where} (file size limit, see 'ulimit -f'); raise the limit or "
                f"put the store elsewhere with --home DIR", EXIT_STORAGE)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        name = f" on {exc.filename}" if exc.filename else ""
        return (f"permission denied{name} ({exc.strerror}); use a writable store with --home DIR "
                f"or HPCBOX_HOME", EXIT_STORAGE)
    at = f" at {exc.filename}" if exc.filename else ""
    return (f"{exc.strerror or _one_line(str(exc)) or type(exc).__name__}{at}; check the path and try "
            f"again", EXIT_FAILURE)


def _os_cause(exc: BaseException) -> Optional[OSError]:
    """The OSError a package error was raised from (disk full under a LayerError, say), if any."""
    seen = 0
    cause = exc.__cause__ or exc.__context__
    while cause is not None and seen < 8:
        if isinstance(cause, OSError) and cause.errno is not None:
            return cause
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return None


if TYPE_CHECKING:
    Rule = Tuple[type, int, str]  # (exception type, exit code, what it means)


def _registry_rules() -> List[Rule]:
    try:
        import hpcbox_registry as r
    except ImportError:  # pragma: no cover - a dependency of the CLI
        return []
    return [
        (r.InvalidReferenceError, EXIT_USAGE, "write it as [REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]"),
        (r.AuthenticationError, EXIT_AUTH,
         "check the user name and password, then run 'hpcbox login REGISTRY'"),
        (r.AuthorizationError, EXIT_AUTH, "log in with an account that may read this repository"),
        (r.InvalidPlatformError, EXIT_USAGE, "write it as os/architecture[/variant], e.g. linux/amd64"),
        (r.PlatformNotFoundError, EXIT_NOT_FOUND, "choose one of the image's platforms with --platform"),
        (r.NotFoundError, EXIT_NOT_FOUND, "check the repository name and tag"),
        (r.DigestMismatchError, EXIT_INTEGRITY,
         "the registry served damaged data; try again or tell its admin"),
        (r.TLSVerificationError, EXIT_NETWORK, "pass the registry's CA with --ca-bundle FILE"),
        (r.RegistryConnectionError, EXIT_NETWORK, "check the registry address and your network or proxy"),
        (r.InsecureRegistryError, EXIT_NETWORK, "allow plain http with --insecure-registry HOST"),
        (r.RateLimitedError, EXIT_NETWORK, "wait and try again, or log in to get a higher limit"),
        (r.RegistryServerError, EXIT_NETWORK, "the registry failed; try again later"),
        (r.UnsupportedMediaTypeError, EXIT_FAILURE, "this image format is not supported"),
        (r.CredentialStoreError, EXIT_FAILURE, "fix or remove the credentials file, then run 'hpcbox login'"),
        (r.RegistryError, EXIT_FAILURE, "check the image name and the registry"),
    ]


def _layer_rules() -> List[Rule]:
    try:
        import hpcbox_layers as lay
    except ImportError:  # pragma: no cover - a dependency of the CLI
        return []
    limit = getattr(lay, "ExtractionLimitError", None)
    rules: List[Rule] = []
    if limit is not None:
        rules.append((limit, EXIT_STORAGE, "raise the limit with HPCBOX_MAX_LAYER_EXPANSION or free space"))
    rules += [
        (lay.UnsafeEntryError, EXIT_INTEGRITY, "the image is malformed or hostile; do not use it"),
        (lay.CorruptLayerError, EXIT_INTEGRITY,
         "check the image with 'hpcbox verify --repair IMAGE', or tell its publisher"),
        (lay.UnsupportedMediaTypeError, EXIT_FAILURE, "this layer format is not supported"),
        (lay.LayerError, EXIT_FAILURE, "check free space and permissions of the store"),
    ]
    return rules


def _bundle_rules() -> List[Rule]:
    """The engine contract's bases (:mod:`hpcbox_oci_bundle.contract`): every engine's errors derive
    from them, an engine's BundleError from both EngineError and BundleError (so it is 125)."""
    import hpcbox_oci_bundle as b

    return [
        (b.UnavailableError, EXIT_ENGINE, "run 'hpcbox info' to see which engines work here"),
        (b.EngineError, EXIT_ENGINE, "see 'hpcbox info', or choose another engine with --engine"),
        (b.BundleError, EXIT_FAILURE, "fix the container's config.json"),
        (b.Error, EXIT_FAILURE, "see 'hpcbox info'"),
    ]


def _store_rules() -> List[Rule]:
    from hpcbox.store.layout import AmbiguousImageError, StoreCorruptError, StoreError, UnknownImageError
    from hpcbox.store.lock import LockBusy

    return [
        (UnknownImageError, EXIT_NOT_FOUND, "run 'hpcbox images' to list the images"),
        (AmbiguousImageError, EXIT_USAGE, "give more of the id, or the image's name"),
        (StoreCorruptError, EXIT_INTEGRITY, "run 'hpcbox verify --repair IMAGE'"),
        (StoreError, EXIT_FAILURE, "check the store with 'hpcbox verify'"),
        (LockBusy, EXIT_FAILURE, "another hpcbox command holds the store's lock; wait for it and try again"),
    ]


_RULE_SOURCES: Tuple[Callable[[], List[Rule]], ...] = (
    _store_rules, _layer_rules, _registry_rules, _bundle_rules)


def rules() -> List[Rule]:
    """(exception class, exit code, fix) for every package's errors, most specific first."""
    found: List[Rule] = []
    for source in _RULE_SOURCES:
        found += source()
    return found


def describe(exc: BaseException) -> Tuple[str, int]:
    """The one-line message (without the ``hpcbox: error:`` prefix) and exit code for *exc*."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; run the same command again to resume", EXIT_INTERRUPTED
    if isinstance(exc, HpcboxError):
        return _one_line(str(exc)), exc.code
    for cls, code, fix in rules():
        if isinstance(exc, cls):
            cause = _os_cause(exc)
            if cause is not None and cause.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                message, storage = _os_error(cause)
                text = _one_line(str(exc)).split("; ")[0]
                said = f": {cause.strerror}".lower() if cause.strerror else ""
                if said and text.lower().endswith(said):  # "...: No space left on device" said once
                    text = text[: -len(said)]
                return f"{text}: {message}", storage
            return _with_fix(exc, fix), code
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; run on a machine (or batch job) with more memory", EXIT_FAILURE
    return (f"unexpected {type(exc).__name__}: {_one_line(str(exc))}; run again with HPCBOX_DEBUG=1 "
            f"and report the traceback", EXIT_FAILURE)
