"""Every failure becomes one line ``hpcbox: error: <problem>; <fix>`` and an exit code.

Exit codes (documented in the README):
  0 success, 1 other failure, 2 usage or bad reference syntax, 3 image/manifest/platform not found,
  4 authentication or authorization, 5 network, TLS or registry server, 6 integrity (digest
  mismatch, damaged store), 7 local storage (disk full, file size limit, permissions), 130 interrupted.
"""

from __future__ import annotations

import errno
from typing import Tuple

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_NETWORK = 5
EXIT_INTEGRITY = 6
EXIT_STORAGE = 7
EXIT_INTERRUPTED = 130


class HpcboxError(Exception):
    """An error of the CLI itself: *problem* and *fix* are joined on one line."""

    def __init__(self, problem: str, fix: str = "", code: int = EXIT_FAILURE):
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.code = code


class UsageError(HpcboxError):
    def __init__(self, problem: str, fix: str = "see 'hpcbox COMMAND -h'"):
        super().__init__(problem, fix, EXIT_USAGE)


# Registry exception class name -> (exit code, fix used when the message carries none)
_REGISTRY = {
    "InvalidReferenceError": (EXIT_USAGE, "write it as [REGISTRY/]REPOSITORY[:TAG|@sha256:DIGEST]"),
    "AuthenticationError": (EXIT_AUTH, "check the user name and password, then run 'hpcbox login REGISTRY'"),
    "AuthorizationError": (EXIT_AUTH, "log in with an account that may read this repository"),
    "NotFoundError": (EXIT_NOT_FOUND, "check the repository name and tag"),
    "PlatformNotFoundError": (EXIT_NOT_FOUND, "choose one of the image's platforms with --platform"),
    "DigestMismatchError": (EXIT_INTEGRITY, "the registry served damaged data; try again or tell its admin"),
    "RegistryConnectionError": (EXIT_NETWORK, "check the registry address and your network or proxy"),
    "TLSVerificationError": (EXIT_NETWORK, "pass the registry's CA with --ca-bundle FILE"),
    "InsecureRegistryError": (EXIT_NETWORK, "allow plain http with --insecure-registry HOST"),
    "RateLimitedError": (EXIT_NETWORK, "wait and try again, or log in to get a higher limit"),
    "RegistryServerError": (EXIT_NETWORK, "the registry failed; try again later"),
    "UnsupportedMediaTypeError": (EXIT_FAILURE, "this image format is not supported"),
    "RegistryError": (EXIT_FAILURE, "see HPCBOX_DEBUG=1 for details"),
}

_STORE = {
    "UnknownImageError": EXIT_NOT_FOUND,
    "AmbiguousImageError": EXIT_USAGE,
    "StoreCorruptError": EXIT_INTEGRITY,
    "StoreError": EXIT_FAILURE,
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
    return (f"{exc.strerror or exc}{where}; check the path and try again", EXIT_FAILURE)


def describe(exc: BaseException) -> Tuple[str, int]:
    """The one-line message (without the ``hpcbox: error:`` prefix) and exit code for *exc*."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; run the same command again to resume", EXIT_INTERRUPTED
    if isinstance(exc, HpcboxError):
        return _one_line(str(exc)), exc.code
    names = [cls.__name__ for cls in type(exc).__mro__]
    for name in names:
        if name in _REGISTRY and type(exc).__module__.startswith("hpcbox_registry"):
            code, fix = _REGISTRY[name]
            text = _one_line(str(exc)) or name
            return (text if ";" in text else f"{text}; {fix}"), code
    for name in names:
        if name in _STORE and type(exc).__module__.startswith("hpcbox.store"):
            return _one_line(str(exc)), _STORE[name]
    if isinstance(exc, OSError):
        return _os_error(exc)
    return (f"unexpected {type(exc).__name__}: {_one_line(str(exc))}; run again with HPCBOX_DEBUG=1 "
            f"and report the traceback", EXIT_FAILURE)
