"""The contract between hpcbox's engines and their callers, in one place (docs/architecture.md,
"The engine contract"): the exit codes of ``run()``, the annotation keys an engine reads, the
capabilities an engine declares, and the base errors every engine raises.

This module imports nothing (it is on the path of every ``hpcbox run``); the typed ``Engine``
protocol, which needs :mod:`typing`, is in :mod:`hpcbox_oci_bundle.protocol`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is for type checkers only (it costs ~2 ms to import)
if TYPE_CHECKING:
    from typing import Optional

# -- exit status of run() before the program runs (as Docker and runc report them) ---------------
EXIT_ENGINE = 125  #: the engine (runtime) failed; one line on stderr says why
EXIT_NOT_EXECUTABLE = 126  #: the program was found but cannot be executed
EXIT_NOT_FOUND = 127  #: the program was not found
#: every status an engine returns of its own; anything else is the program's (128+n: signal n)
EXIT_CODES = (EXIT_ENGINE, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND)

# -- annotation keys (config.json "annotations") ---------------------------------------------------
ANNOTATION_NET = "org.hpcbox.net"  #: "host" or "none" (a private network namespace with lo up)
ANNOTATION_NVIDIA_DRIVER = "org.hpcbox.nvidia.driver"  #: the host driver version bound for GPUs
ANNOTATION_RUNC_RUNTIME = "org.hpcbox.runc.runtime"  #: "builtin", or delegate to "runc"/"crun"
ANNOTATION_RUNC_OVERLAY_LOWER = "org.hpcbox.runc.overlay.lower"
ANNOTATION_RUNC_OVERLAY_UPPER = "org.hpcbox.runc.overlay.upper"
ANNOTATION_RUNC_OVERLAY_WORK = "org.hpcbox.runc.overlay.work"
#: the overlay container's directories, in the order lower, upper, work
ANNOTATIONS_RUNC_OVERLAY = (ANNOTATION_RUNC_OVERLAY_LOWER, ANNOTATION_RUNC_OVERLAY_UPPER,
                            ANNOTATION_RUNC_OVERLAY_WORK)
ANNOTATION_RUNC_SHARE_USERNS = "org.hpcbox.runc.share-userns"  #: join a running container's userns
ANNOTATION_RUNC_IDMAP = "org.hpcbox.runc.idmap"  #: "auto" or "single"
ANNOTATION_RUNC_CHOWN = "org.hpcbox.runc.chown"  #: "fake" or "strict"
ANNOTATION_PTRACE_SECCOMP = "org.hpcbox.ptrace.seccomp"  #: seccomp fast path on (default) or off
ANNOTATION_PRELOAD_MODE = "org.hpcbox.preload.mode"  #: how the library is loaded (F1..F4)
ANNOTATION_SINGULARITY_GPU = "org.hpcbox.singularity.gpu"
ANNOTATION_SINGULARITY_FAKEROOT = "org.hpcbox.singularity.fakeroot"
ANNOTATION_SINGULARITY_USERNS = "org.hpcbox.singularity.userns"
ANNOTATION_SINGULARITY_CONTAINALL = "org.hpcbox.singularity.containall"
ANNOTATION_SINGULARITY_NO_MOUNT = "org.hpcbox.singularity.no-mount"

# -- capabilities: what a caller may ask of an engine (its ``capabilities`` frozenset) -------------
CAP_OVERLAY = "overlay"  #: mounts an overlay container (the runc.overlay.* annotations)
CAP_SCRATCH_TMPFS = "scratch-tmpfs"  #: honours tmpfs mounts of its own (e.g. the --gpus scratch)
CAP_PRIVATE_NETWORK = "private-network"  #: org.hpcbox.net=none gives an isolated network
CAP_GPUS = "gpus"  #: runs programs against the host's NVIDIA driver bound into the container
CAP_STATIC_PROGRAMS = "static-programs"  #: runs statically linked programs (not only dynamic ones)
CAP_DELEGATE_RUNTIME = "delegate-runtime"  #: hands the bundle to an installed runc/crun on request
CAPABILITIES = (CAP_OVERLAY, CAP_SCRATCH_TMPFS, CAP_PRIVATE_NETWORK, CAP_GPUS, CAP_STATIC_PROGRAMS,
                CAP_DELEGATE_RUNTIME)


# -- errors --------------------------------------------------------------------------------------
class Error(Exception):
    """Base of the contract's errors: ``str(error)`` is one line "<problem>; <hint>".

    *problem* says what is wrong, *hint* how to fix it, *code* the exit status a command line
    should end with. A message given whole ("problem; hint") is split at its first "; "."""

    default_code = 1

    def __init__(self, problem: str, hint: str = "", code: Optional[int] = None):
        text = str(problem)
        if not hint and "; " in text:
            text, hint = text.split("; ", 1)
        super().__init__(f"{text}; {hint}" if hint else text)
        self.problem = text
        self.hint = hint
        self.code = self.default_code if code is None else code


class EngineError(Error):
    """The engine cannot run this bundle here (before the program ran): exit status 125."""

    default_code = EXIT_ENGINE


class UnavailableError(EngineError):
    """The engine cannot work on this host at all (missing helper, kernel feature or binary)."""
