"""The engine object: runs an OCI bundle's program with the LD_PRELOAD library (no namespaces).

The first process is the launcher (a host program) with the library preloaded and the
configuration in environment variables; its chdir and execvp go through the library, so from
there on every process of the container is a program of the rootfs started by the rootfs's own
loader, with paths translated by the library (csrc/, README "How it works").
"""

from __future__ import annotations

import os
import sys

import hpcbox_oci_bundle
from hpcbox_oci_bundle import (
    Binding,
    Bundle,
    BundleError,
    Container,
    contract,
    guest_bindings,
    helper_file,
    helper_problem,
    parse_bundle,
    place_bindings,
    resolve_in_root,
    run_to_completion,
    spawn,
)
from hpcbox_oci_bundle.backstop import landlock_wanted

from hpcbox_engine_preload import _files

TYPE_CHECKING = False  # typing for the checker only: the run path (start) imports little
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

    BundleLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]

EXIT_ENGINE = contract.EXIT_ENGINE
MODE_ANNOTATION = contract.ANNOTATION_PRELOAD_MODE
NET_ANNOTATION = contract.ANNOTATION_NET
MODES = ("F1", "F2", "F3", "F4")


class EngineError(hpcbox_oci_bundle.EngineError, RuntimeError):
    """The container cannot start with this engine; str() is one line "<problem>; <fix>"."""


def _multiarch() -> str:
    machine = os.uname().machine
    return {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(machine, f"{machine}-linux-gnu")


def _ld_so_conf_dirs(rootfs: str, conf: str = "/etc/ld.so.conf", depth: int = 0) -> List[str]:
    """Guest directories listed by the container's ld.so.conf (with its include lines)."""
    if depth > 4:
        return []
    try:
        with open(resolve_in_root(rootfs, conf), encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    out: List[str] = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            pattern = line.split(None, 1)[1] if " " in line or "\t" in line else ""
            if not pattern.startswith("/"):
                pattern = os.path.join(os.path.dirname(conf), pattern)
            base = resolve_in_root(rootfs, os.path.dirname(pattern))
            for name in _matching(base, os.path.basename(pattern)):
                out += _ld_so_conf_dirs(rootfs, os.path.join(os.path.dirname(pattern), name), depth + 1)
        elif line.startswith("/"):
            out.append(line.split("=", 1)[0])
    return out


def _matching(directory: str, pattern: str) -> List[str]:
    """Names in directory matching a glob pattern (the usual "*.conf" without loading fnmatch)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    if "?" in pattern or "[" in pattern or pattern.count("*") > 1:
        import fnmatch

        return [n for n in names if fnmatch.fnmatchcase(n, pattern) and not n.startswith(".")]
    head, star, tail = pattern.partition("*")
    if not star:
        return [n for n in names if n == pattern]
    return [n for n in names if n.startswith(head) and n.endswith(tail) and len(n) >= len(head + tail)
            and not n.startswith(".")]


def _has_libraries(directory: str, first: str) -> int:
    """2 when directory holds `first` (the C library), 1 when it holds shared objects, else 0."""
    found = 0
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name == first:
                    return 2
                if not found and ".so" in entry.name:
                    found = 1
    except OSError:
        return 0
    return found


def _host_dirs(rootfs: str, guests: List[str], libc: str) -> str:
    """Host directories of the guest ones that hold libraries, the C library's first: the loader tries
    every directory (and its hwcaps subdirectories) in order for each library it looks for."""
    seen: Dict[str, int] = {}
    for guest in guests:
        host = resolve_in_root(rootfs, guest)
        if host not in seen:
            seen[host] = _has_libraries(host, libc)
    ordered = sorted((d for d, kind in seen.items() if kind), key=lambda d: -seen[d])
    return ":".join(ordered)


def glibc_library_path(rootfs: str) -> str:
    """Host directories for the container's glibc loader: its ld.so.conf, then its default dirs
    (the loader runs with --inhibit-cache and would otherwise fall back to the host's)."""
    arch = _multiarch()
    defaults = [f"/lib/{arch}", f"/usr/lib/{arch}", "/lib64", "/usr/lib64", "/lib", "/usr/lib"]
    return _host_dirs(rootfs, _ld_so_conf_dirs(rootfs) + defaults, "libc.so.6")


def musl_library_path(rootfs: str) -> str:
    """Host directories for the container's musl loader: its /etc/ld-musl-ARCH.path or musl's default."""
    arch = os.uname().machine
    guests = ["/lib", "/usr/local/lib", "/usr/lib"]
    try:
        with open(resolve_in_root(rootfs, f"/etc/ld-musl-{arch}.path"), encoding="utf-8") as handle:
            listed = handle.read().replace("\n", ":").split(":")
        guests = [d.strip() for d in listed if d.strip().startswith("/")] or guests
    except OSError:
        pass
    return _host_dirs(rootfs, guests, f"ld-musl-{arch}.so.1")


# PT_INTERP values of the usual programs; resolved once here instead of at every exec (a hint: an exec
# whose loader moved meanwhile resolves it again).
LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-x86_64.so.1",
           "/lib/ld-musl-aarch64.so.1")


# glibc >= 2.33's loaders take this option; its usage text names it.
HWCAPS_MASK_OPTION = b"--glibc-hwcaps-mask"


def _takes_hwcaps_mask(loader: str) -> bool:
    try:
        with open(loader, "rb") as handle:
            return HWCAPS_MASK_OPTION in handle.read(4 << 20)
    except OSError:
        return False


# The subdirectories that glibc < 2.37's loader searches on x86_64 (the hardware capabilities
# HWCAP_X86_64 and HWCAP_X86_AVX512_1, "tls", the platforms), under which LD_HWCAP_MASK=0 could
# hide a library: where a library directory has none, the mask changes nothing but the probes.
LEGACY_HWCAP_DIRS = ("x86_64", "avx512_1", "tls", "haswell", "xeon_phi")


def known_loaders(rootfs: str, library_path: str = "") -> str:
    """Lines guest=host of the LOADERS this rootfs has, each after its marks:

    - "+" when the library may start that loader with its glibc-hwcaps subdirectories masked: the
      loader takes the option and none of the container's library directories (library_path) has
      such a subdirectory, so the loader's probes there (6 failed system calls per exec on x86_64)
      can only fail;
    - "~" (the x86_64 glibc loader) when none of them has a subdirectory of the older search either
      (LEGACY_HWCAP_DIRS): the library may then start it with LD_HWCAP_MASK=0, and the probes of
      glibc < 2.37 there (tls/x86_64/x86_64, tls/x86_64, x86_64/x86_64...: 14 failed system calls
      per exec) drop to those of "tls" and the platform (6). glibc >= 2.37 has no such search."""
    dirs = [d for d in library_path.split(":") if d]
    no_hwcaps = not any(os.path.isdir(os.path.join(d, "glibc-hwcaps")) for d in dirs)
    lines = []
    for guest in LOADERS:
        host = resolve_in_root(rootfs, guest)
        if os.path.isfile(host):
            mask = no_hwcaps and "musl" not in guest and _takes_hwcaps_mask(host)
            legacy = guest.endswith("/ld-linux-x86-64.so.2") and not any(  # looked at only for that loader
                os.path.isdir(os.path.join(d, n)) for d in dirs for n in LEGACY_HWCAP_DIRS)
            lines.append(f"{'+' if mask else ''}{'~' if legacy else ''}{guest}={host}")
    return "\n".join(lines)


def ptrace_prefix(spec: Bundle, bindings: Sequence[Binding]) -> List[str]:
    """The ptrace engine's tracer command line for this container, without the cwd, the ids and the
    program (the library adds them): statically linked programs, which the library cannot enter,
    run under it. Empty when hpcbox-engine-ptrace is not installed (found without importing it)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("hpcbox_engine_ptrace")
    except (ImportError, ValueError):
        found = None
    if found is None or not found.origin:
        return []
    tracer = os.path.join(os.path.dirname(found.origin), "hpcbox-ptrace")
    if not os.access(tracer, os.X_OK):
        return []
    argv = [tracer, "--rootfs", spec.rootfs]
    if spec.hostname:
        argv += ["--hostname", spec.hostname]
    if spec.readonly:
        argv.append("--readonly")
    for binding in bindings:
        argv += ["--bind-ro" if binding.readonly else "--bind", binding.guest, binding.host]
    return argv


OWNERS_FILE = "ownership"  # the container's ownership record, beside its rootfs (csrc/guestpath/owners.h)
_OWNERS_HEADER = b"HPCBOXOWNERS1\n".ljust(64, b"\0")


def ownership_record(spec: Bundle) -> Optional[str]:
    """The container's ownership record (what chown set under root emulation; shared with the ptrace
    engine), created empty when missing: in the bundle directory when the rootfs lies in it, else
    none (chown then changes nothing that stat would show)."""
    bundle = os.path.realpath(spec.bundle_dir)
    if os.path.dirname(spec.rootfs) != bundle:
        return None
    path = os.path.join(bundle, OWNERS_FILE)
    if os.path.exists(path):
        return path
    temp = f"{path}.{os.getpid()}.tmp"  # complete before it appears: other processes may open it at once
    try:
        with open(temp, "wb") as handle:
            handle.write(_OWNERS_HEADER)
        os.chmod(temp, 0o600)
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
    except OSError:
        return path if os.path.exists(path) else None
    finally:
        try:
            os.unlink(temp)
        except OSError:
            pass
    return path


def preload_environment(spec: Bundle, debug: Optional[str] = None) -> Dict[str, str]:
    """The launcher's environment: the container's plus the library's configuration."""
    try:
        bindings = guest_bindings(spec)
    except BundleError as exc:
        raise EngineError(str(exc)) from None
    mode = spec.annotations.get(MODE_ANNOTATION, "F1") or "F1"
    if mode not in MODES:
        raise EngineError(f"unknown preload mode {mode!r} in annotation {MODE_ANNOTATION}; "
                          f"use one of {', '.join(MODES)} (hpcbox setup --execmode=F1..F4)")
    for binding in bindings:
        if "=" in binding.guest or "\n" in binding.guest or "\n" in binding.host:
            raise EngineError(f"the container path {binding.guest!r} holds '=' or a newline, which the "
                              "preload engine cannot pass on; choose another path for the volume")
    bindings = place_bindings(spec.rootfs, bindings)  # as mounts land: links followed, mount points made
    env = dict(spec.env)
    env["LD_PRELOAD"] = _files.preload_library_file()
    env["HPCBOX_PRELOAD_ROOT"] = spec.rootfs
    env["HPCBOX_PRELOAD_BINDS"] = "\n".join(f"{b.guest}={b.host}" for b in bindings)
    read_only = [b.guest for b in bindings if b.readonly] + (["/"] if spec.readonly else [])
    if read_only:
        env["HPCBOX_PRELOAD_RO"] = "\n".join(read_only)
    env["HPCBOX_PRELOAD_LIB"] = _files.preload_library_file()
    musl = _files.musl_library_file()
    if musl:
        env["HPCBOX_PRELOAD_LIB_MUSL"] = musl
    env["HPCBOX_PRELOAD_LIBPATH"] = glibc_path = glibc_library_path(spec.rootfs)
    env["HPCBOX_PRELOAD_LIBPATH_MUSL"] = musl_library_path(spec.rootfs)
    if (spec.uid, spec.gid) != (os.getuid(), os.getgid()):
        env["HPCBOX_PRELOAD_UID"] = str(spec.uid)
        env["HPCBOX_PRELOAD_GID"] = str(spec.gid)
        owners = ownership_record(spec)
        if owners and "\n" not in owners:
            env["HPCBOX_PRELOAD_OWNERS"] = owners
    if spec.hostname:
        env["HPCBOX_PRELOAD_HOSTNAME"] = spec.hostname
    env["HPCBOX_PRELOAD_MODE"] = mode
    tracer = ptrace_prefix(spec, bindings)
    if tracer and not any("\n" in arg for arg in tracer):
        env["HPCBOX_PRELOAD_PTRACE"] = "\n".join(tracer)
    loaders = known_loaders(spec.rootfs, glibc_path)
    if loaders:
        env["HPCBOX_PRELOAD_LOADERS"] = loaders
    if landlock_wanted(os.environ)[0]:
        env["HPCBOX_PRELOAD_LANDLOCK"] = "1"  # the launcher only: the library does not pass it on
    if debug:
        env["HPCBOX_DEBUG"] = debug
    return env


class PreloadEngine:
    """LD_PRELOAD engine: fast path translation inside each process, for dynamically linked programs."""

    name = "preload"
    #: no mount or network namespace: binds only (tmpfs mounts and --net=none are refused), and the
    #: library reaches dynamically linked programs only
    capabilities = frozenset({contract.CAP_GPUS})

    def landlock(self) -> Tuple[bool, str]:
        """Whether a run from this environment restricts the container's writes with Landlock
        (where the kernel has it): (True, "") or (False, why not)."""
        return landlock_wanted(os.environ)

    def available(self, **hints: Any) -> Tuple[bool, str]:
        """(True, what it serves) when the library and launcher are installed, else (False, fix).
        No hint changes the answer."""
        if not sys.platform.startswith("linux"):
            return False, f"the preload engine needs Linux (this is {sys.platform}); use another host"
        # the launcher first (the program that runs), then the libraries preloaded into programs
        library = helper_file(_files.HERE, _files.PRELOAD_LIBRARY)
        helpers = [(helper_file(_files.HERE, _files.LAUNCHER), True), (library, False)]
        musl = _files.musl_library_file()
        if musl:
            helpers.append((musl, False))
        for helper, executable in helpers:
            problem = helper_problem(helper, executable)
            if problem:
                return False, (f"{problem}; reinstall hpcbox-engine-preload (the wheel for this "
                               "machine)")
        libcs = "glibc and musl" if musl else "glibc (built without musl-gcc)"
        return True, (f"LD_PRELOAD library {os.path.basename(library)} for {libcs} programs, dynamically "
                      "linked only")

    def parse(self, bundle: BundleLike, bundle_dir: Optional[str] = None) -> Bundle:
        try:
            return parse_bundle(bundle, bundle_dir)
        except BundleError as exc:
            raise EngineError(str(exc)) from None

    def command(self, spec: Bundle) -> List[str]:
        return [_files.launcher_file(), spec.cwd, *spec.args]

    def start(self, bundle: BundleLike, *, bundle_dir: Optional[str] = None, stdin: Any = None,
              stdout: Any = None, stderr: Any = None) -> Container:
        """Start the container and return at once; raise EngineError when it cannot start."""
        spec = self.parse(bundle, bundle_dir)
        if spec.annotations.get(NET_ANNOTATION) == "none":
            raise EngineError("--net=none needs a network namespace, which the preload engine does not "
                              "create; use --engine runc (user namespaces) for an isolated network")
        env = preload_environment(spec, os.environ.get("HPCBOX_DEBUG"))
        try:
            if stdin is None and stdout is None and stderr is None and spawn.available():
                process: Any = spawn.Spawned(self.command(spec), env)
            else:
                import subprocess  # (~5 ms: only where a caller hands over streams)

                process = subprocess.Popen(self.command(spec), env=env, stdin=stdin, stdout=stdout,
                                           stderr=stderr)
        except OSError as exc:
            raise EngineError(f"cannot start {_files.LAUNCHER}: {exc.strerror}; reinstall "
                              "hpcbox-engine-preload") from None
        return Container(process)

    def run(self, bundle: BundleLike, *, bundle_dir: Optional[str] = None, stdin: Any = None,
            stdout: Any = None, stderr: Any = None, forward_signals: bool = True) -> int:
        """Run the bundle to completion and return its exit status: the program's, 128+n when it
        died of signal n, 125 when nothing could run (a statically linked program: one line saying
        so), 126/127 when the program is not executable/not found. Problems found before anything
        starts (bad bundle, --net=none, a tmpfs mount) raise EngineError."""
        return run_to_completion(
            lambda: self.start(bundle, bundle_dir=bundle_dir, stdin=stdin, stdout=stdout, stderr=stderr),
            forward_signals)

