"""hpcbox run [options] IMAGE|CONTAINER [COMMAND [ARG...]]

An existing container (name, id or unique id prefix) is run as it is; anything else is taken for an
image, pulled when missing (``--pull``), and created into a new container first. The OCI runtime config
is built by :mod:`hpcbox.runspec`, written to ``<container>/config.json`` and handed to the engine. The
container's exit status (or 128+signal) is hpcbox's.

This is the hot path of hpcbox: keep imports lazy (``python -X importtime -m hpcbox run C /bin/true``).
"""

from __future__ import annotations

import os
import sys

from hpcbox_oci_bundle import contract

from hpcbox.errors import HpcboxError, UsageError

TYPE_CHECKING = False  # typing and the classes below are for the checker: this is the hot path
if TYPE_CHECKING:
    from argparse import Namespace
    from pathlib import Path
    from typing import Any, Callable, ContextManager, Dict, List, Optional, Protocol, Sequence, Tuple, Union

    from hpcbox.containers import Container, ContainerStore
    from hpcbox.runspec import RunOptions
    from hpcbox.store import Store
    from hpcbox_registry import Platform

    class RunTarget(Protocol):
        """What a run reads of its container: a :class:`hpcbox.containers.Container`, the lean one of
        :mod:`hpcbox.quick` (paths as strings) or a ``--location`` tree (:class:`hpcbox.udocker.Location`)."""

        @property
        def names(self) -> List[str]: ...
        @property
        def short_id(self) -> str: ...
        @property
        def dir(self) -> Union[str, Path]: ...
        @property
        def rootfs(self) -> Union[str, Path]: ...
        @property
        def config_path(self) -> Union[str, Path]: ...
        @property
        def settings(self) -> Dict[str, Any]: ...
        @property
        def image_config(self) -> Dict[str, Any]: ...
        def in_use(self) -> ContextManager[object]: ...

    class HasId(Protocol):
        @property
        def id(self) -> str: ...


def run(args: Namespace) -> int:
    from hpcbox import settings, udocker
    from hpcbox.containers import ContainerStore, UnknownContainerError

    udocker.prepare_run(args)
    store = settings.store(args)
    if getattr(args, "location", None):
        with udocker.Location(args.location, store) as location:
            return _run(args, location)
    cs = ContainerStore(store)
    try:
        container = cs.get(args.target)
    except UnknownContainerError:
        container = None
    if container is not None:
        if args.name:
            raise UsageError(f"--name is for a new container, but {args.target!r} is an existing container",
                             f"rename it with 'hpcbox rename {args.target} {args.name}'")
    else:
        container = _create(args, store, cs)
    try:
        return _run(args, container)
    finally:
        if args.rm:
            _remove(cs, container)


def _create(args: Namespace, store: Store, cs: ContainerStore) -> Container:
    from hpcbox.containers import check_name

    if args.name is not None:
        check_name(args.name)
    platform = None
    if args.platform:
        from hpcbox_registry import Platform

        platform = Platform.parse(args.platform)
    _pull(args, store, platform)
    from hpcbox.output import note

    return cs.create(args.target, args.name, platform=platform, storage=_storage(args), on_note=note,
                     durable=not args.rm)  # removed after the run: no fsync of its record


def _storage(args: Namespace) -> Optional[str]:
    return "overlay" if getattr(args, "overlay", False) else None


def _pull(args: Namespace, store: Store, platform: Optional[Platform]) -> None:
    """``--pull missing`` (default), ``never`` or ``always``."""
    from hpcbox.store import UnknownImageError, lookup

    if args.pull != "always":
        try:
            image = lookup.find(store, args.target)
            arch = (image.platform or {}).get("architecture")
            if platform is None or not arch or arch == platform.architecture:
                return
        except UnknownImageError:
            if args.pull == "never":
                raise UsageError(f"no container or image {args.target!r} here and --pull never was given",
                                 "pull the image first with 'hpcbox pull', or drop --pull never") from None
            _not_a_misspelt_container(args.target, store)
        except Exception as exc:  # InvalidReferenceError: `Work` is no image, maybe a container
            if type(exc).__name__ == "InvalidReferenceError":
                _not_a_misspelt_container(args.target, store)
            raise
    from hpcbox import progress, settings
    from hpcbox.store.pull import pull_image

    ref = settings.parse_reference(args.target)
    with settings.client(args) as client:
        workers = getattr(getattr(client, "config", None), "max_workers", 4) or 4
        pull_image(store, client, ref, platform=platform,
                   progress=progress.for_stream(sys.stderr, quiet=args.quiet,
                                                mode=getattr(args, "progress", None)),
                   workers=workers)


def _not_a_misspelt_container(target: str, store: Store) -> None:
    """A bare word that reads as a container name (see :mod:`hpcbox.names`) is not sent to a registry."""
    from hpcbox import names
    from hpcbox.containers import ContainerStore
    from hpcbox.errors import EXIT_NOT_FOUND

    containers = [n for c in ContainerStore(store).list() for n in c.names]
    try:
        images = [t.rsplit("/", 1)[-1] for i in store.images() for t in i.tags]
    except Exception:  # the suggestions are a courtesy
        images = []
    close = names.misspelt_container(target, containers, images)
    if close is None:
        _no_nameless_damaged_container(target, store)
        return
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise HpcboxError(f"no such container or image {target!r}",
                      f"{hint}'hpcbox ps' lists containers, 'hpcbox images' images; to pull an image from "
                      f"a registry write it with a tag or registry (e.g. {target.lower()}:latest)",
                      EXIT_NOT_FOUND)


def _no_nameless_damaged_container(target: str, store: Store) -> None:
    """A bare word is not sent to a registry while a damaged container whose name cannot be read any
    more is there: the word may well be that name."""
    from hpcbox.containers import ContainerStore
    from hpcbox.errors import EXIT_NOT_FOUND

    if any(c in target for c in "/:@"):
        return
    lost = [d for d in ContainerStore(store).damaged() if not d.names]
    if not lost:
        return
    which = ("1 damaged container has lost its name" if len(lost) == 1
             else f"{len(lost)} damaged containers have lost their names")
    raise HpcboxError(f"no such container or image {target!r}, and {which}",
                      f"'hpcbox ps' lists them, 'hpcbox rm ID' or 'hpcbox prune' removes them; to pull an "
                      f"image from a registry write it with a tag or registry (e.g. {target.lower()}:latest)",
                      EXIT_NOT_FOUND)


def _remove(cs: ContainerStore, container: HasId) -> None:
    from hpcbox.containers import ContainerError

    try:
        cs.remove(container.id, force=True)
    except ContainerError as exc:  # e.g. protected: the run's own status still counts
        sys.stderr.write(f"hpcbox: warning: --rm: {exc}\n")


def _run_as_default(args: Namespace) -> str:
    """``settings.run_as(args)[0]``, without importing :mod:`hpcbox.settings` (json, pathlib, re: a few
    ms of every start) when neither HPCBOX_RUN_AS nor a config file that could set it is there."""
    from hpcbox.storehome import store_home

    home = store_home(args)
    site = os.environ.get("HPCBOX_SITE_CONFIG") or "/etc/hpcbox/config.json"
    if (home is not None and not os.environ.get("HPCBOX_RUN_AS")
            and not os.path.exists(f"{home}/config.json") and not os.path.exists(site)):
        return "root"
    from hpcbox import settings

    return settings.run_as(args)[0]


def options(args: Namespace, container_settings: Dict[str, Any]) -> RunOptions:
    from hpcbox.runspec import RunOptions

    run_as = getattr(args, "run_as", None) or _run_as_default(args)
    return RunOptions(
        args.command, entrypoint=args.entrypoint, env=args.env, env_files=args.env_file, workdir=args.workdir,
        user=args.user, volumes=args.volume, hostenv=args.hostenv, hostauth=args.hostauth,
        containerauth=args.containerauth, bindhome=args.bindhome, nosysdirs=args.nosysdirs,
        hostname=args.hostname, net=args.net, runtime=args.runtime or container_settings.get("runtime"),
        terminal=args.tty, annotations=container_settings.get("annotations"),
        batchenv=getattr(args, "batchenv", True), as_me=run_as == "me")


def _run(args: Namespace, container: RunTarget) -> int:
    """Run *container* (a :class:`hpcbox.containers.Container`, or the lean stand-in of
    :mod:`hpcbox.quick`, whose paths are strings) as *args* say."""
    if getattr(container, "storage", "copy") != "overlay":
        return _run_with(args, container, None)
    with Cleanups() as stack:
        return _run_with(args, container, stack)


class Cleanups:
    """What an overlay run undoes at its end, last first, each also when one before it failed
    (``contextlib.ExitStack.callback`` without contextlib, which costs ~1 ms of every run)."""

    def __init__(self) -> None:
        self._undo: List[Tuple[Callable[..., object], Tuple[Any, ...]]] = []

    def callback(self, action: Callable[..., object], *args: Any) -> None:
        self._undo.append((action, args))

    def __enter__(self) -> Cleanups:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._undo:
            return
        action, args = self._undo.pop()
        try:
            action(*args)
        finally:
            self.__exit__(*exc)


def _run_with(args: Namespace, container: RunTarget, stack: Optional[Cleanups]) -> int:
    """Plan once, start; when an ``auto`` engine cannot start here, plan again from scratch for the
    next engine (:func:`hpcbox.engines.fallbacks`, chosen by capabilities) and start that."""
    from hpcbox import engines

    chosen = container.settings or _default_settings()
    opts = options(args, chosen)
    if getattr(container, "keep_etc", False) and not opts.hostauth:  # --location: a tree run in place
        opts.containerauth = True
    view = None
    if getattr(container, "storage", "copy") == "overlay":
        assert stack is not None  # (an overlay container is a stored one, or hpcbox.quickimage's new one)
        view = _overlay_annotations(container, opts, stack)
    config = _base_config(args, container, opts, view)
    _prepare_host(args, opts)
    requested = args.engine or chosen.get("engine") or "auto"
    name, engine = engines.resolve(requested, opts.runtime)
    _fit(config, args, container, engine)
    _write_config(container.config_path, config)
    if view is not None and not engines.can(engine, contract.CAP_OVERLAY, opts.runtime):
        delegated = opts.runtime not in (None, "builtin") and engines.can(engine, contract.CAP_OVERLAY)
        raise overlay_only_runc(container, f"{name} --runtime {opts.runtime}" if delegated else name)
    with container.in_use():
        status = _start(name, engine, config, str(container.dir), opts.runtime)
        if status != engines.EXIT_ENGINE:
            return status
        ok, reason = engines.check(engine, opts.runtime)
        if ok:
            return status
        if requested == "auto":
            env = config["process"]["env"]
            path = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/bin:/bin")
            dynamic = engines.is_dynamic(str(container.rootfs), config["process"]["args"][0], path)
            needs = (contract.CAP_OVERLAY,) if view is not None else ()
            for other, fallback in engines.fallbacks(name, opts.runtime, dynamic, needs=needs):
                config = _base_config(args, container, opts, view)  # from scratch, for this engine
                _fit(config, args, container, fallback, warn=False)
                return _start(other, fallback, config, str(container.dir), opts.runtime)
        raise engines.EngineUnavailableError(name, reason)


def _base_config(args: Namespace, container: RunTarget, opts: RunOptions,
                 view: Optional[Sequence[str]]) -> Dict[str, Any]:
    """The runtime config every engine gets: the image's config and the run's options
    (:mod:`hpcbox.runspec`), less udocker's ``--novol`` volumes."""
    from hpcbox import runspec

    image_config = {} if getattr(args, "nometa", False) else container.image_config
    config = runspec.build(image_config, opts, rootfs=str(container.rootfs),
                           container_dir=str(container.dir), view=view)
    novol = getattr(args, "novol", ())
    if novol:  # (hpcbox.udocker is imported only when udocker's options or variables are used)
        from hpcbox import udocker

        udocker.drop_novol(config, novol)
    return config


def _default_settings() -> Dict[str, Any]:
    """The settings of ``UDOCKER_DEFAULT_EXECUTION_MODE`` (:func:`hpcbox.udocker.default_settings`), for
    a container without its own; {} when it is unset, without importing :mod:`hpcbox.udocker`."""
    if not os.environ.get("UDOCKER_DEFAULT_EXECUTION_MODE", "").strip():
        return {}
    from hpcbox import udocker

    return udocker.default_settings()


def _prepare_host(args: Namespace, opts: RunOptions) -> None:
    """What the run asks of the host before any engine starts: the batch job's MPI servers are
    checked, ``--cpuset-cpus`` is applied to hpcbox (the engine and the container inherit it)."""
    if opts.batchenv:
        from hpcbox import mpi

        job = mpi.detect(os.environ)
        if job is not None:
            mpi.check_servers(job)
    if args.cpuset_cpus:
        from hpcbox import runspec

        cpus = runspec.parse_cpuset(args.cpuset_cpus)
        try:
            os.sched_setaffinity(0, cpus)  # inherited by the engine and the container
        except OSError as exc:
            allowed = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
            raise UsageError(f"cannot use CPUs {args.cpuset_cpus} ({exc.strerror})",
                             f"choose among the CPUs this job may use: {allowed}") from None


def _fit(config: Dict[str, Any], args: Namespace, container: RunTarget, engine: Any,
         warn: bool = True) -> None:
    """What *engine*'s capabilities decide in *config*: the GPUs, with the scratch tmpfs only for an
    engine that mounts one."""
    from hpcbox import engines

    gpus = getattr(args, "gpus", None)
    copied = getattr(container, "nvidia", None)
    if gpus is not None or copied:
        _add_gpus(config, gpus, copied, scratch=engines.can(engine, contract.CAP_SCRATCH_TMPFS), warn=warn)


def _add_gpus(config: Dict[str, Any], gpus: Optional[str], copied: Optional[Dict[str, Any]], scratch: bool,
              warn: bool = True) -> None:
    """``--gpus``/``--nv``: bind the host's NVIDIA driver and devices (see :mod:`hpcbox.gpu`); a container
    prepared by ``setup --nvidia`` has the libraries already and gets the device nodes and environment."""
    from hpcbox import gpu

    chosen = gpu.parse_gpus(gpus) if gpus is not None else None
    driver = gpu.discover()
    warning = gpu.apply(config, driver, chosen, bind_libraries=gpus is not None or not copied,
                        scratch=scratch)
    if warning and warn:
        sys.stderr.write(f"hpcbox: warning: {warning}\n")
    if warn and gpus is None and copied and copied.get("driver") != driver.version:
        sys.stderr.write(f"hpcbox: warning: the container holds the libraries of NVIDIA driver "
                         f"{copied.get('driver') or '?'} but this host runs {driver.version or '?'}; run "
                         f"'hpcbox setup --nvidia' on it again, or use 'hpcbox run --gpus'\n")


OVERLAY_ANNOTATIONS = contract.ANNOTATIONS_RUNC_OVERLAY  # (lower, upper, work)


def overlay_only_runc(container: RunTarget, engine_name: str) -> HpcboxError:
    from hpcbox import engines

    label = container.names[0] if container.names else container.short_id
    return HpcboxError(f"container {label} is an overlay container, which only the runc engine's builtin "
                       f"runner can mount (asked for engine {engine_name})",
                       "use --engine runc without --runtime, or recreate it without --overlay",
                       engines.EXIT_ENGINE)


def _overlay_annotations(container: Any, opts: RunOptions, stack: Cleanups) -> List[str]:
    """Put the overlay annotations into *opts*; return the directories to read image files from.

    One overlay mount at a time may write a container's upper directory (the kernel warns of undefined
    behaviour and a concurrent mount can fail with EINVAL): the run holding ``.upper.lock`` gets it;
    a concurrent run of the same container mounts it as a read-only layer below a private upper
    directory of its own, removed when the run ends."""
    from hpcbox.store.lock import FileLock, LockBusy

    lower, upper, work = str(container.lower or ""), str(container.upper), str(container.work)
    for path in (lower, upper, work):
        if not path or not os.path.isdir(path):
            raise HpcboxError(f"overlay container {container.short_id} lacks its directory {path!r}",
                              f"remove it with 'hpcbox rm {container.short_id}' and create it again")
    lock = FileLock(os.path.join(container.dir, ".upper.lock"), blocking=False)  # (dir: a str or Path)
    try:
        lock.acquire()
        stack.callback(lock.release)
        view = [upper, lower]
    except LockBusy:
        from hpcbox.containers import remove_tree

        private = os.path.join(container.dir, f".run-{os.getpid()}-{os.urandom(4).hex()}")
        stack.callback(remove_tree, private)
        os.makedirs(os.path.join(private, "upper"))
        os.mkdir(os.path.join(private, "work"))
        lower, upper, work = f"{upper}:{lower}", os.path.join(private, "upper"), os.path.join(private, "work")
        view = [upper, *lower.split(":")]
        from hpcbox.output import note

        label = container.names[0] if container.names else container.short_id
        note(f"another run is writing overlay container {label}: this run's changes go to a private "
             f"layer that is discarded at its end (jobs that share their writes need a copy container)")
    opts.annotations.update(zip(OVERLAY_ANNOTATIONS, (lower, upper, work)))
    return view


# What a batch system sends to end a job; the engines pass them on to the container while it runs.
_BATCH_SIGNALS = ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")


class _SignalHold:
    """Around ``engine.run``: a batch signal that reaches hpcbox before the engine has set its own
    handlers ends hpcbox at once (nothing runs yet), as the default action would; one that arrives
    after the container has ended (Slurm signals every process of the step, hpcbox too) is
    swallowed, so that it can neither turn the container's status into 128+n nor interrupt --rm.
    "After" is known from the engine's count of ended runs (``hpcbox_oci_bundle.runs_ended``), which
    moves before the engine gives the handlers back: a signal between that and run()'s return was
    taken for an early one and ended hpcbox with 143 (once in a Slurm test). The hold stays until
    hpcbox exits; :meth:`release` is for callers that live on (tests)."""

    def __init__(self) -> None:
        self.engine_returned = False
        self.previous: Dict[int, Any] = {}  # signal number -> its handler before
        self.ended_at = _runs_ended()

    def install(self) -> _SignalHold:
        signal = _signal_module()
        for name in _BATCH_SIGNALS:
            sig = getattr(signal, name)
            if signal.getsignal(sig) == signal.SIG_IGN:
                continue  # ignored when hpcbox started (SIGHUP under nohup): it stays so, to the end
            try:
                self.previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: Python sets no handlers there
                break
        return self

    def _on_signal(self, sig: int, _frame: object) -> None:
        if not self.engine_returned and _runs_ended() == self.ended_at:
            raise SystemExit(128 + sig)

    def release(self) -> None:
        signal = _signal_module()
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


def _runs_ended() -> int:
    """The engines' count of ended container runs (0 with an hpcbox-oci-bundle that has none)."""
    import hpcbox_oci_bundle

    count = getattr(hpcbox_oci_bundle, "runs_ended", None)
    return count() if count is not None else 0


def _signal_module() -> Any:  # _signal, or signal: the same functions
    """The signal functions without the signal module's enums (enum costs ~1 ms per `hpcbox run`)."""
    try:
        import _signal

        return _signal
    except ImportError:  # pragma: no cover - other interpreters
        import signal

        return signal


def _start(name: str, engine: Any, config: Dict[str, Any], bundle_dir: str, runtime: Optional[str]) -> int:
    from hpcbox import engines

    hold = _SignalHold().install()
    try:
        return int(engine.run(config, bundle_dir=bundle_dir))
    except engines.EngineUnavailableError:
        raise
    except contract.EngineError as exc:  # every engine's errors derive from the contract's base
        text = " ".join(str(exc).split())
        ok, reason = engines.check(engine, runtime)
        if not ok:
            raise engines.EngineUnavailableError(name, reason) from None
        raise HpcboxError(f"engine {name} cannot run the container: {text}",
                          "" if ";" in text else "see 'hpcbox info'", engines.EXIT_ENGINE) from None
    finally:
        hold.engine_returned = True
        _holds.append(hold)


_holds: List[_SignalHold] = []  # for release_signal_holds()


def release_signal_holds() -> None:
    """Give back the signal handlers `hpcbox run` held (for callers that go on after it: tests)."""
    while _holds:
        _holds.pop().release()


def _write_config(path: Union[str, Path], config: Dict[str, Any]) -> None:
    """config.json in compact JSON. Left as it is when it already holds this config (the usual case
    for an existing container). Read and written without importing json (whose decoder and encoder
    import re: ~2 ms per run)."""
    from hpcbox import leanjson

    try:
        with open(str(path), encoding="utf-8") as handle:
            if leanjson.same(leanjson.loads(handle.read()), config):
                return
    except (OSError, ValueError):
        pass
    from hpcbox import runspec

    runspec.write_if_changed(str(path), leanjson.dumps(config, separators=(",", ":")))
