"""The engine object: runs an OCI bundle with the builtin runner or an installed runc/crun."""

from __future__ import annotations

import os
import sys

from hpcbox_oci_bundle import Container, contract, helper_file, helper_path, run_to_completion, spawn

from hpcbox_engine_runc import _availability, idmap
from hpcbox_engine_runc._bundle import STANDARD_MOUNTS, Bundle, parse_bundle, resolve_in_root
from hpcbox_engine_runc.errors import EngineError, UnavailableError

TYPE_CHECKING = False  # typing and pathlib are for type checkers and callers only (~3 ms to import)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, List, Mapping, Optional, Tuple, Union

    from hpcbox_engine_runc import _shared

RUNNER_NAME = "hpcbox-userns"
EXIT_RUNTIME = contract.EXIT_ENGINE
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
# Signals a batch system or a user sends to the engine's caller: passed on to the container.
# SIGINT/SIGQUIT/SIGWINCH from a terminal reach the container directly (same process group).
_LEXICAL_PREFIXES = ("/dev/", "/proc/", "/sys/")  # filled by the runner itself, not in the rootfs
if TYPE_CHECKING:
    BundleLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]


def runner_path() -> Path:
    """The compiled builtin runner shipped inside the package (or in $HPCBOX_LIBEXEC_DIR)."""
    return helper_path(_package_dir(), RUNNER_NAME)


def _package_dir() -> str:
    return os.path.dirname(os.path.realpath(__file__))


def runner_file() -> str:
    """runner_path() as a string, without pathlib (~1.5 ms of every run to import)."""
    return helper_file(_package_dir(), RUNNER_NAME)


def _mount_target(bundle: Bundle, destination: str) -> str:
    if destination.startswith(_LEXICAL_PREFIXES):
        rootfs: str = bundle.rootfs
        return rootfs + destination
    return resolve_in_root(bundle.rootfs, destination)


def runner_argv(bundle: Bundle, runner: Optional[str] = None) -> List[str]:
    """The builtin runner's command line for a parsed bundle (no JSON reaches the C side)."""
    argv = [str(runner or runner_file()), "--rootfs", bundle.rootfs, "--uid", str(bundle.uid),
            "--gid", str(bundle.gid), "--cwd", bundle.cwd]
    if bundle.hostname:
        argv += ["--hostname", bundle.hostname]
    if bundle.readonly:
        argv.append("--readonly")
    if bundle.no_new_privs:
        argv.append("--no-new-privs")
    if bundle.net == "none":
        argv.append("--net-none")
    if bundle.host_pid:
        argv.append("--host-pid")
    if bundle.host_ipc:
        argv.append("--host-ipc")
    if bundle.chown == "fake":
        argv.append("--fake-chown")
    if bundle.overlay:
        lower, upper, work = bundle.overlay
        argv += ["--overlay", f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work},userxattr"]
    for mount in bundle.mounts:
        if not mount.is_bind and mount.destination in STANDARD_MOUNTS:
            continue  # the runner sets up /proc, /dev, /sys itself
        target = _mount_target(bundle, mount.destination)
        argv += ["--mount", mount.source, target, mount.type, str(mount.flags), mount.data]
    return [*argv, "--", *bundle.args]


def _setns(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if hasattr(os, "setns"):
            os.setns(fd, nstype)
            return
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, nstype) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def bring_loopback_up(pid: int) -> Optional[str]:
    """Set `lo` up with pyroute2 in the network namespace of process `pid`; return an error or None.

    A forked child joins the user namespace first (the caller owns it, so it may), then the
    network namespace, and talks rtnetlink there; the caller's own namespaces never change.
    """
    from pyroute2 import IPRoute

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            os.close(read_end)
            _setns(f"/proc/{pid}/ns/user", CLONE_NEWUSER)
            _setns(f"/proc/{pid}/ns/net", CLONE_NEWNET)
            with IPRoute() as ipr:
                ipr.link("set", index=1, state="up")
            code = 0
        except BaseException as error:
            os.write(write_end, str(error).encode()[:500])
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return message or f"helper exit status {status}"


class RuncEngine:
    """Rootless user-namespace engine: the builtin runner, or runc/crun by annotation."""

    name = "runc"
    capabilities = frozenset({contract.CAP_OVERLAY, contract.CAP_SCRATCH_TMPFS,
                              contract.CAP_PRIVATE_NETWORK, contract.CAP_GPUS,
                              contract.CAP_STATIC_PROGRAMS, contract.CAP_DELEGATE_RUNTIME})

    def __init__(self, runner: Optional[str] = None):
        self._runner = runner

    @property
    def runner(self) -> str:
        return str(self._runner or runner_file())

    def available(self, proc_root: str = "/proc", runtime: str = "builtin", **hints: Any) -> Tuple[bool, str]:
        """(True, why) when this host can run containers with `runtime`, else (False, what to do).
        *proc_root* is where /proc is (tests); other hints are ignored."""
        ok, reason = _availability.check(self.runner, proc_root)
        if ok and runtime == "builtin":
            full = idmap.plan(0, 0)
            if full.possible:
                return ok, f"{reason}; container ids: a full range ({full.reason})"
            return ok, (f"{reason}; container ids: one, yours ({full.reason}): chown to other ids "
                        "is ignored and apt downloads as root")
        if not ok or runtime == "builtin":
            return ok, reason
        binary = _availability.runtime_binary(runtime)
        if binary is None:
            return False, (
                f"{runtime} is not installed (not on PATH nor in /usr/sbin); install it "
                f"(Debian: apt-get install {runtime}) or use the builtin runtime"
            )
        return True, f"{reason}; delegating to {binary}"

    def parse(self, bundle: BundleLike, bundle_dir: Optional[str] = None) -> Bundle:
        return parse_bundle(bundle, bundle_dir)

    def start(
        self,
        bundle: BundleLike,
        *,
        bundle_dir: Optional[str] = None,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
    ) -> Container:
        """Start the container and return at once; raise EngineError when it cannot start."""
        spec = parse_bundle(bundle, bundle_dir)
        if spec.runtime != "builtin":
            return self._start_delegated(spec, stdin, stdout, stderr)
        runner = self.runner
        if not os.access(runner, os.X_OK):
            raise UnavailableError(
                f"the runner {runner} is missing or not executable; reinstall hpcbox-engine-runc"
            )
        argv = runner_argv(spec, runner)
        if spec.terminal and _is_tty(stdin):
            argv.insert(1, "--host-pts")
        full = None
        if spec.idmap == "auto" and spec.uid == 0 and spec.share_userns is None:
            full = idmap.plan(spec.uid, spec.gid)
        if full is not None and full.possible and spec.net != "none":
            # the runner runs newuidmap/newgidmap itself, and on their failure maps one id and writes
            # apt's setting: no round trip through this process
            argv[1:1] = [*idmap.runner_options(full), *_apt_fallback(spec)]
            _apt_sandbox(spec, single=False)
            return _spawned(argv, spec, stdin, stdout, stderr)
        if full is not None and full.possible:
            argv.insert(1, "--external-map")
        elif spec.net != "none" and spec.share_userns is None:
            _apt_sandbox(spec, single=True)
            return _spawned(argv, spec, stdin, stdout, stderr)
        if spec.share_userns is None:
            return self._start_synced(argv, spec, stdin, stdout, stderr, group=None, full=full)
        from hpcbox_engine_runc import _shared  # only for containers that share a user namespace

        group = _shared.Group(spec.share_userns)
        try:
            return self._start_synced(argv, spec, stdin, stdout, stderr, group=group)
        finally:
            group.release()

    def _start_synced(self, argv: List[str], spec: Bundle, stdin: Any, stdout: Any, stderr: Any, *,
                      group: Optional[_shared.Group],
                      full: Optional[idmap.FullMap] = None) -> Container:
        """Start the runner and hold it once its namespaces exist: map a full id range into a new user
        namespace (newuidmap/newgidmap, falling back to one id), bring `lo` up in a new network
        namespace, register it in its user-namespace group (which joins the group's namespace when
        the group has a living member), then let it go on."""
        userns_fd = group.find() if group is not None else None
        fds = [] if userns_fd is None else ["--userns-fd", str(userns_fd)]
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        argv = [argv[0], "--sync", str(go_r), str(ready_w), *fds, *argv[1:]]
        passed = (go_r, ready_w) if userns_fd is None else (go_r, ready_w, userns_fd)
        import subprocess

        try:
            process = subprocess.Popen(
                argv, env=spec.env, stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=passed
            )
        except BaseException:
            os.close(ready_r)
            os.close(go_w)
            raise
        finally:
            for fd in passed:
                os.close(fd)
        member = error = None
        try:
            ready = os.read(ready_r, 1)
            if ready == b"R" and full is not None and full.possible:
                single = idmap.apply_full(process.pid, full) is not None
                if single:
                    idmap.apply_single(process.pid, spec.uid, spec.gid)
                _apt_sandbox(spec, single)
            elif ready == b"R":
                _apt_sandbox(spec, single=True)
            if ready == b"R" and group is not None:
                member = group.register(process.pid)
            if ready == b"R" and spec.net == "none":
                error = bring_loopback_up(process.pid)
            if ready == b"R" and error is None:
                os.write(go_w, b"G")
        finally:
            os.close(ready_r)
            os.close(go_w)  # without 'G' the runner stops with status 125
        cleanup = None
        if member is not None:
            from hpcbox_engine_runc import _shared

            cleanup = lambda: _shared.leave(member)  # noqa: E731
        if error is not None:
            process.wait()
            if cleanup:
                cleanup()
            raise EngineError(f"cannot bring lo up in the container's network namespace: {error}")
        return Container(process, cleanup=cleanup)

    def _start_delegated(self, spec: Bundle, stdin: Any, stdout: Any, stderr: Any) -> Container:
        binary = _availability.runtime_binary(spec.runtime)
        if binary is None:
            raise UnavailableError(
                f"{spec.runtime} is not installed; install it (Debian: apt-get install {spec.runtime}) "
                "or drop the org.hpcbox.runc.runtime annotation to use the builtin runner"
            )
        terminal = spec.terminal and _is_tty(stdin)
        from hpcbox_engine_runc import _delegate  # only for runc/crun delegation

        argv, work = _delegate.prepare(spec, spec.runtime, binary, terminal)
        import subprocess

        from hpcbox_engine_runc._runc_retry import RetriedRunc

        try:
            process: Any
            if spec.runtime == "runc":
                process = RetriedRunc(argv, _delegate.runc_log(work), stdin=stdin, stdout=stdout,
                                      stderr=stderr, rename=_delegate.container_name)
            else:
                process = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr)
        except OSError:
            _remove_tree(work)
            raise
        return Container(process, cleanup=lambda: _remove_tree(work))

    def run(
        self,
        bundle: BundleLike,
        *,
        bundle_dir: Optional[str] = None,
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        forward_signals: bool = True,
    ) -> int:
        """Run the bundle to completion and return its exit status: the container's, 128+n when it
        died of signal n, 125 when the runner failed inside the namespaces (one line on stderr),
        126/127 when the program is not executable/not found. Problems found before anything
        starts (bad bundle, missing runner or runtime) raise EngineError subclasses instead.
        stdin/stdout/stderr are inherited unless given (as for subprocess.Popen)."""
        return run_to_completion(
            lambda: self.start(bundle, bundle_dir=bundle_dir, stdin=stdin, stdout=stdout, stderr=stderr),
            forward_signals)


def _spawned(argv: List[str], spec: Bundle, stdin: Any, stdout: Any, stderr: Any) -> Container:
    """The runner started with no sync pipe: Popen's defaults without subprocess where they apply."""
    if stdin is None and stdout is None and stderr is None and spawn.available():
        return Container(spawn.Spawned(argv, spec.env))
    import subprocess

    return Container(subprocess.Popen(argv, env=spec.env, stdin=stdin, stdout=stdout, stderr=stderr))


def _apt_fallback(spec: Bundle) -> List[str]:
    """The runner's ``--single-map-file`` for apt's setting, where the container has apt (see
    :func:`idmap.apt_sandbox`): written by the runner only if the full map fails."""
    if spec.overlay:
        lower, upper, _work = spec.overlay
        return idmap.apt_sandbox_option([upper, *lower], upper)
    return idmap.apt_sandbox_option([spec.rootfs], spec.rootfs)


def _apt_sandbox(spec: Bundle, single: bool) -> None:
    """apt's sandbox setting for this run's id map (see :func:`idmap.apt_sandbox`)."""
    if spec.overlay:
        lower, upper, _work = spec.overlay
        idmap.apt_sandbox([upper, *lower], upper, single)
    else:
        idmap.apt_sandbox([spec.rootfs], spec.rootfs, single)


def _is_tty(stdin: Any) -> bool:
    """Whether the container's stdin (inherited when None) is a terminal."""
    stream = sys.stdin if stdin is None else stdin
    try:
        return os.isatty(stream if isinstance(stream, int) else stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def _remove_tree(path: str) -> None:
    import shutil  # only delegated runs leave a work dir to clean

    shutil.rmtree(path, ignore_errors=True)
