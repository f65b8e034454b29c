"""Image config + `hpcbox run` options -> an OCI runtime config (a dict the engines read as config.json).

Over 500 lines: one translation, Docker's run rules below, each a few lines; it runs on every
`hpcbox run`, where each further module costs start-up time.

Docker's rules for the process:

- ``args`` = ENTRYPOINT + (COMMAND given on the command line, else the image's CMD). ``--entrypoint X``
  replaces the image's ENTRYPOINT *and* drops its CMD; ``--entrypoint ''`` leaves only the COMMAND.
- ``env``: the host environment (``--hostenv`` only), then the image's Env, then the host's batch and
  MPI variables (``OMPI_*``, ``PMIX_*``, ``PMI_*``, ``SLURM_*``, ``PBS_*``: what a rank started by the
  host's mpirun or srun needs to find its peers; ``--no-batch-env`` drops them), then ``--env-file``
  files in order, then ``-e`` options in order; later values win. ``-e NAME`` (no ``=``) copies the
  host's value and is skipped when the host has none. PATH defaults to Docker's default; HOME comes
  from the user's passwd entry; TERM=xterm with ``-t``.
- ``cwd``: ``-w``, else the image's WorkingDir, else ``/``; always absolute.
- ``user``: ``-u``, else the image's User, else root. ``name``/``uid`` and ``group``/``gid`` are looked
  up in the container's /etc/passwd and /etc/group.
- "run as me" (``--as-me``, or ``"run_as": "me"`` in the settings; :func:`as_me`): the caller's uid:gid,
  the host environment, $HOME bound, and the host's working directory bound and used as ``cwd``.

The container's own /etc/passwd and /etc/group (and /etc/shadow, /etc/gshadow where present) list the
caller: :func:`add_caller` adds the entries to the rootfs when they are missing, and the files stay
ordinary writable files, so ``useradd``, ``groupadd`` and package maintainer scripts work inside.
``--hostauth`` binds the host's files read-only instead; ``--containerauth`` leaves the container's files
exactly as they are (the caller is not added).

Files bound into the container:

- /etc/resolv.conf and /etc/hosts from the host, read-only, unless ``--nosysdirs``;
- ``--bindhome`` binds the caller's home directory at the same path; ``-v`` volumes last.

Imports are only the standard library's cheapest modules: this runs on every `hpcbox run`.
"""

from __future__ import annotations

import os
import posixpath
import stat

from hpcbox_oci_bundle import contract

try:  # collections.abc would import all of collections (~1 ms on every `hpcbox run`)
    from _collections_abc import Mapping
except ImportError:  # pragma: no cover - other interpreters
    from collections.abc import Mapping

from hpcbox.errors import UsageError

TYPE_CHECKING = False  # typing costs ~2 ms to import: only type checkers read these names
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANNOTATION_RUNTIME = contract.ANNOTATION_RUNC_RUNTIME
ANNOTATION_NET = contract.ANNOTATION_NET
NETS = ("host", "none")
RUNTIMES = ("builtin", "runc", "crun")
HOST_FILES = ("/etc/resolv.conf", "/etc/hosts")


class RunOptions:
    """What `hpcbox run` was asked for, independent of argparse (tests build it directly)."""

    __slots__ = ("annotations", "as_me", "batchenv", "bindhome", "command", "containerauth", "entrypoint",
                 "env", "env_files", "hostauth", "hostenv", "hostname", "net", "nosysdirs", "runtime",
                 "terminal", "user", "volumes", "workdir")

    def __init__(self, command: Sequence[str] = (), *, entrypoint: Optional[str] = None,
                 env: Sequence[str] = (), env_files: Sequence[str] = (), workdir: Optional[str] = None,
                 user: Optional[str] = None, volumes: Sequence[str] = (), hostenv: bool = False,
                 hostauth: bool = False, containerauth: bool = False, bindhome: bool = False,
                 nosysdirs: bool = False, hostname: Optional[str] = None, net: str = "host",
                 runtime: Optional[str] = None, terminal: bool = False,
                 annotations: Optional[Mapping[str, str]] = None, batchenv: bool = True, as_me: bool = False):
        self.command = list(command)
        self.entrypoint = entrypoint
        self.env = list(env)
        self.env_files = list(env_files)
        self.workdir = workdir
        self.user = user
        self.volumes = list(volumes)
        self.hostenv = hostenv
        self.hostauth = hostauth
        self.containerauth = containerauth
        self.bindhome = bindhome
        self.nosysdirs = nosysdirs
        self.hostname = hostname
        self.net = net
        self.runtime = runtime
        self.terminal = terminal
        self.annotations = dict(annotations or {})
        self.batchenv = batchenv
        self.as_me = as_me


class Caller:
    """The user running hpcbox, as it appears in the generated /etc/passwd and /etc/group.

    (Plain classes here: a NamedTuple costs a millisecond to define, on every `hpcbox run`.)
    """

    __slots__ = ("gid", "group", "home", "name", "shell", "uid")

    def __init__(self, uid: int, gid: int, name: str, group: str, home: str, shell: str):  # noqa: PLR0917
        self.uid, self.gid, self.name, self.group, self.home, self.shell = uid, gid, name, group, home, shell

    @classmethod
    def current(cls) -> Caller:
        import pwd

        uid, gid = os.getuid(), os.getgid()
        try:
            entry = pwd.getpwuid(uid)
            name, home, shell = entry.pw_name, entry.pw_dir, entry.pw_shell or "/bin/sh"
        except KeyError:  # a batch system's uid without a passwd entry
            name = os.environ.get("USER") or f"user{uid}"
            home, shell = os.environ.get("HOME") or "/", "/bin/sh"
        try:
            import grp

            group = grp.getgrgid(gid).gr_name
        except (KeyError, ImportError):
            group = name if gid == uid else f"group{gid}"
        return cls(uid, gid, name, group, home, shell)


# -- "run as me" ------------------------------------------------------------------------------------

RUN_AS = ("root", "me")
# Host directories that, bound over the container's own, would replace its system: never bound as $PWD.
SYSTEM_DIRS = frozenset(("bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run",
                         "sbin", "sys", "usr", "var"))


def keep_caller_ids(opts: RunOptions, caller: Caller) -> None:
    """Run the process under the caller's own uid:gid (unless ``-u`` chose a user)."""
    if opts.user is None:
        opts.user = f"{caller.uid}:{caller.gid}"


def bindable_workdir(path: Optional[str]) -> bool:
    """Whether the host directory *path* may be bound at the same path and used as the working
    directory: absolute, existing, and not / or a system directory of the container (/usr, /etc...)."""
    if not path or not path.startswith("/") or not os.path.isdir(path):
        return False
    first = posixpath.normpath(path).split("/")[1]
    return bool(first) and first not in SYSTEM_DIRS


def as_me(opts: RunOptions, caller: Caller, cwd: Optional[str], home: Optional[str] = None) -> None:
    """Apptainer's habits (``--as-me``, or ``"run_as": "me"`` in the settings): the caller's uid/gid, the
    host environment (the image's Env still wins for PATH and the like), the home directory (*home*,
    the host's $HOME, else the caller's passwd entry) bound at its own path, and the host's working
    directory *cwd* bound and used as the working directory. Explicit ``-u`` and ``-w`` win; a home
    that does not exist and a $PWD that is / or a system directory are not bound."""
    keep_caller_ids(opts, caller)
    opts.hostenv = True
    home = posixpath.normpath(home or caller.home or "/")
    binds = []
    if bindable_workdir(home):
        binds.append(home)
    if bindable_workdir(cwd):
        cwd = posixpath.normpath(cwd or "/")
        if not binds or (cwd != home and not cwd.startswith(home.rstrip("/") + "/")):
            binds.append(cwd)
        if opts.workdir is None:
            opts.workdir = cwd
    for path in binds:
        if f"{path}:{path}" not in opts.volumes:
            opts.volumes.append(f"{path}:{path}")


# -- the process --------------------------------------------------------------------------------------

def _as_list(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):  # Docker accepts the shell form in some configs: run it through sh -c
        return ["/bin/sh", "-c", value]
    return [str(v) for v in value]


def process_args(image: Mapping[str, Any], command: Sequence[str], entrypoint: Optional[str]) -> List[str]:
    """Docker's ENTRYPOINT/CMD rule (see the module doc); UsageError when nothing is left to run."""
    if entrypoint is not None:
        entry = [entrypoint] if entrypoint != "" else []
        cmd = list(command)
    else:
        entry = _as_list(image.get("Entrypoint"))
        cmd = list(command) if command else _as_list(image.get("Cmd"))
    args = entry + cmd
    if not args:
        raise UsageError("nothing to run: the image has no ENTRYPOINT or CMD and no COMMAND was given",
                         "give a command after the image, e.g. 'hpcbox run IMAGE /bin/sh'")
    return args


def parse_env_file(path: str) -> List[str]:
    """Docker's env-file format: NAME=value or NAME per line; '#' comments and blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read env file {path} ({exc.strerror or exc})",
                         "give an existing file of NAME=value lines to --env-file") from None
    entries = []
    for number, line in enumerate(lines, 1):
        text = line.lstrip()
        if not text or text.startswith("#"):
            continue
        name = text.split("=", 1)[0]
        if not name or any(c.isspace() for c in name):
            raise UsageError(f"env file {path} line {number}: {line!r} is not NAME=value",
                             "write one NAME=value (or NAME) per line")
        entries.append(text)
    return entries


def _set_env(env: Dict[str, str], item: str, host: Mapping[str, str], where: str) -> None:
    name, sep, value = item.partition("=")
    if not name or "\0" in item:
        raise UsageError(f"bad environment entry {item!r} in {where}", "write NAME=value or NAME")
    if sep:
        env[name] = value
    elif name in host:
        env[name] = host[name]


# Set by mpirun/srun/PBS for each rank or task: the container's MPI library needs them to join the job.
BATCH_ENV_PREFIXES = ("OMPI_", "PMIX_", "PMI_", "SLURM_", "PBS_")


def merge_env(image: Mapping[str, Any], opts: RunOptions, host: Mapping[str, str]) -> Dict[str, str]:
    env: Dict[str, str] = dict(host) if opts.hostenv else {}
    for item in image.get("Env") or []:
        name, _, value = str(item).partition("=")
        if name:
            env[name] = value
    if opts.batchenv:
        env.update((k, v) for k, v in host.items() if k.startswith(BATCH_ENV_PREFIXES))
    for path in opts.env_files:
        for item in parse_env_file(path):
            _set_env(env, item, host, f"--env-file {path}")
    for item in opts.env:
        _set_env(env, item, host, "-e/--env")
    env.setdefault("PATH", DEFAULT_PATH)
    if opts.terminal:
        env.setdefault("TERM", "xterm")
    return env


def workdir(image: Mapping[str, Any], given: Optional[str]) -> str:
    cwd = given if given else (image.get("WorkingDir") or "/")
    if not cwd.startswith("/"):
        raise UsageError(f"working directory {cwd!r} is not absolute",
                         "give an absolute path inside the container to -w/--workdir")
    return posixpath.normpath(cwd) if cwd != "/" else "/"


# -- users -------------------------------------------------------------------------------------------

def read_db(path: str) -> List[List[str]]:
    """Lines of a passwd/group file split on ':' (missing file: empty)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith(("#", "+", "-"))]


def _number(text: str) -> Optional[int]:
    return int(text) if text.isdigit() else None


def resolve_user(spec: str, passwd: List[List[str]], group: List[List[str]]) -> Tuple[int, int, str]:
    """``name|uid[:group|gid]`` -> (uid, gid, home) from the container's databases."""
    user, _, grp_spec = spec.partition(":")
    if not user:
        raise UsageError(f"bad user {spec!r}", "write -u/--user as name|uid[:group|gid]")
    uid = _number(user)
    entry = None
    for fields in passwd:
        if len(fields) >= 4 and fields[0 if uid is None else 2] == user:
            entry = fields
            break
    if uid is None:
        if entry is None or _number(entry[2]) is None:
            raise UsageError(f"user {user!r} is not in the container's /etc/passwd",
                             "give a numeric uid[:gid] to -u/--user, or a user of the image")
        uid = int(entry[2])
    home = entry[5] if entry is not None and len(entry) > 5 and entry[5] else ("/root" if uid == 0 else "/")
    if grp_spec:
        gid = _number(grp_spec)
        if gid is None:
            match = [f for f in group if len(f) >= 3 and f[0] == grp_spec and _number(f[2]) is not None]
            if not match:
                raise UsageError(f"group {grp_spec!r} is not in the container's /etc/group",
                                 "give a numeric gid after the ':' in -u/--user, or a group of the image")
            gid = int(match[0][2])
    else:
        gid = _number(entry[3]) if entry is not None else None
        if gid is None:
            gid = 0  # Docker's rule for a uid without a passwd entry
    return uid, gid, home


def in_view(rootfs: str, rel: str, view: Optional[Sequence[str]] = None) -> str:
    """Host path of the image file *rel*: under *rootfs*, or for an overlay container (whose rootfs is
    an empty mount point) the first of the *view* directories (upper first) that has it; an overlay
    whiteout in one of them hides the file below."""
    rel = rel.lstrip("/")  # an absolute name (a shell) is still inside the container
    if not view:
        return os.path.join(rootfs, rel)
    for directory in view:
        path = os.path.join(directory, rel)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            break
        return path
    return os.path.join(rootfs, rel)


AUTH_FILES = ("passwd", "group", "shadow", "gshadow")


def add_caller(rootfs: str, caller: Caller, view: Optional[Sequence[str]] = None) -> Tuple[str, str]:
    """Make the container's own /etc/passwd and /etc/group (and /etc/shadow, /etc/gshadow where the
    image has them) list root and the caller; return the host paths of passwd and group.

    The files stay ordinary, writable files of the container (never binds), so ``useradd``,
    ``groupadd`` and package maintainer scripts can replace them (they write ``/etc/group+`` and rename
    it over ``/etc/group``, which a bind mount refuses). They are rewritten only when an entry is
    missing, so the common run reads four small files and writes nothing. For an overlay container
    (*view*: upper first) the changed files go to the upper directory."""
    target = view[0] if view else rootfs
    texts = {name: _read_text(in_view(rootfs, f"etc/{name}", view)) for name in AUTH_FILES}
    passwd_lines = _split(texts["passwd"])
    group_lines = _split(texts["group"])
    users = {line.split(":")[0] for line in passwd_lines}
    uids = {line.split(":")[2] for line in passwd_lines if line.count(":") >= 3}
    new: Dict[str, List[str]] = {"passwd": [], "group": [], "shadow": [], "gshadow": []}
    if "root" not in users:
        passwd_lines.insert(0, "root:x:0:0:root:/root:/bin/sh")
    if str(caller.uid) not in uids and caller.name not in users:
        shell = caller.shell if os.path.exists(in_view(rootfs, caller.shell.lstrip("/"), view)) else "/bin/sh"
        new["passwd"].append(f"{caller.name}:x:{caller.uid}:{caller.gid}:{caller.name}:{caller.home}:{shell}")
        new["shadow"].append(f"{caller.name}:!:::::::")
    groups = {line.split(":")[0] for line in group_lines}
    gids = {line.split(":")[2] for line in group_lines if line.count(":") >= 2}
    if "root" not in groups:
        group_lines.insert(0, "root:x:0:")
    if str(caller.gid) not in gids and caller.group not in groups:
        new["group"].append(f"{caller.group}:x:{caller.gid}:")
        new["gshadow"].append(f"{caller.group}:!::")
    wanted = {"passwd": passwd_lines + new["passwd"], "group": group_lines + new["group"]}
    for name in ("shadow", "gshadow"):
        if texts[name] is not None and new[name]:
            present = {line.split(":")[0] for line in _split(texts[name])}
            wanted[name] = _split(texts[name]) + [e for e in new[name] if e.split(":")[0] not in present]
    paths = {}
    for name, lines in wanted.items():
        paths[name] = in_view(rootfs, f"etc/{name}", view)
        if lines != _split(texts[name]) or texts[name] is None:
            paths[name] = _write_etc(target, name, "".join(line + "\n" for line in lines), paths[name])
    return paths["passwd"], paths["group"]


def _write_etc(target: str, name: str, text: str, current: str) -> str:
    """Write ``<target>/etc/<name>`` (keeping the current file's mode); never through a symlink that an
    image planted (``etc`` or the file itself), which could point out of the container."""
    etc = os.path.join(target, "etc")
    path = os.path.join(etc, name)
    try:
        try:
            if not stat.S_ISDIR(os.lstat(etc).st_mode):
                return current
        except FileNotFoundError:
            os.makedirs(etc, mode=0o755, exist_ok=True)
        mode = 0o640 if name in ("shadow", "gshadow") else 0o644
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                return current
            mode = stat.S_IMODE(st.st_mode) | 0o600
        except FileNotFoundError:
            pass
        write_if_changed(path, text, mode)
    except PermissionError:  # the container gave /etc to another id: run without the caller's entry
        return current
    return path


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _split(text: Optional[str]) -> List[str]:
    return [line for line in (text or "").splitlines() if line]


def write_if_changed(path: str, text: str, mode: int = 0o644) -> None:
    """Replace *path* atomically with *text*, and not at all when it already holds it (the common case
    on every `run` of an existing container)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    except OSError:
        pass
    # unique even for jobs of several nodes that share the store (same pid, other host): never a torn file
    temp = f"{path}.tmp-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


# -- mounts ------------------------------------------------------------------------------------------

class Volume:
    __slots__ = ("destination", "readonly", "source")

    def __init__(self, source: str, destination: str, readonly: bool):
        self.source, self.destination, self.readonly = source, destination, readonly

    def _key(self) -> Tuple[str, str, bool]:
        return self.source, self.destination, self.readonly

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Volume) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Volume({self.source!r}, {self.destination!r}, readonly={self.readonly})"

    def mount(self) -> Dict[str, Any]:
        return {"destination": self.destination, "type": "bind", "source": self.source,
                "options": ["rbind", "ro" if self.readonly else "rw"]}


def parse_volume(text: str, cwd: Optional[str] = None) -> Volume:
    """``host[:container][:ro|rw]``; the host path must exist (relative to *cwd*).

    Paths may hold colons (``/data/A:B:/mnt/A:B``, as workflow engines write them): the text is split at
    the first colon where the part before it exists on the host and the part after it is absolute, and
    only a trailing ``:ro``/``:rw`` is a mode."""
    if not text or "\0" in text:
        raise UsageError(f"bad volume {text!r}", "write -v/--volume as HOST[:CONTAINER[:ro|rw]]")
    body, mode = text, "rw"
    if text[-3:] in (":ro", ":rw") and not os.path.exists(_host_path(text, cwd)):
        body, mode = text[:-3], text[-2:]
    candidates = [(body, "")] + [(body[:i], body[i + 1:]) for i, c in enumerate(body) if c == ":"]
    shaped = [(h, d) for h, d in candidates if h and (not d or d.startswith("/"))]
    chosen = next(((h, d) for h, d in shaped if os.path.exists(_host_path(h, cwd))), None)
    if chosen is None:
        if body.startswith(":"):
            raise UsageError(f"bad volume {text!r}", "write -v/--volume as HOST[:CONTAINER[:ro|rw]]")
        split = [h for h, d in shaped if d]
        if not split and ":" in body:
            raise UsageError(f"volume destination in {text!r} is not absolute",
                             "give an absolute path in the container to -v/--volume, e.g. /data:/mnt/data")
        raise UsageError(f"volume source {_host_path(split[0] if split else body, cwd)} does not exist on "
                         "this host", "create it first or fix the path given to -v/--volume")
    host = os.path.normpath(_host_path(chosen[0], cwd))
    dest = chosen[1] or host
    return Volume(host, posixpath.normpath(dest), mode == "ro")


def _host_path(text: str, cwd: Optional[str]) -> str:
    host = os.path.expanduser(text)
    if host.startswith("/"):
        return host
    try:
        return os.path.join(cwd or os.getcwd(), host)
    except FileNotFoundError:
        raise UsageError(f"volume source {host!r} is relative and the current directory is gone",
                         "give an absolute path to -v/--volume") from None


def parse_cpuset(text: str) -> Set[int]:
    """``0-3,6`` -> {0, 1, 2, 3, 6} (taskset's list format)."""
    cpus: Set[int] = set()
    try:
        for part in text.split(","):
            low, sep, high = part.strip().partition("-")
            first = int(low)
            last = int(high) if sep else first
            if first < 0 or last < first:
                raise ValueError(part)
            cpus.update(range(first, last + 1))
    except ValueError:
        raise UsageError(f"bad CPU list {text!r}", "write --cpuset-cpus as a list like 0-3,6") from None
    return cpus


# -- the whole config --------------------------------------------------------------------------------

def image_settings(image_config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``config`` object of an OCI image config blob (or the object itself if already unwrapped)."""
    inner = image_config.get("config") if isinstance(image_config, Mapping) else None
    return inner if isinstance(inner, Mapping) else {}


def build(image_config: Mapping[str, Any], opts: RunOptions, *, rootfs: str, container_dir: str,
          host_env: Optional[Mapping[str, str]] = None, caller: Optional[Caller] = None,
          cwd: Optional[str] = None, view: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The OCI runtime config for *opts* in the container at *container_dir* (rootfs at *rootfs*).

    *view*: for an overlay container, its upper and lower directories, where the image's files are
    read from (see :func:`in_view`); the overlay annotations themselves come in ``opts.annotations``."""
    image = image_settings(image_config)
    host = os.environ if host_env is None else host_env
    if opts.as_me:
        caller = caller or Caller.current()
        as_me(opts, caller, _host_cwd(cwd, host), host.get("HOME"))
    if opts.net not in NETS:
        raise UsageError(f"unknown network mode {opts.net!r}", "use --net host or --net none")
    if opts.runtime is not None and opts.runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {opts.runtime!r}", "use --runtime builtin, runc or crun")
    if opts.hostauth and opts.containerauth:
        raise UsageError("--hostauth and --containerauth exclude each other", "choose one of them")
    volumes = [parse_volume(v, cwd) for v in opts.volumes]
    args = process_args(image, opts.command, opts.entrypoint)
    env = merge_env(image, opts, host)
    cwd_in = workdir(image, opts.workdir)
    job = None
    if opts.batchenv:
        from hpcbox import mpi

        job = mpi.detect(host)

    mounts: List[Dict[str, Any]] = []
    if opts.hostauth:
        passwd_path, group_path = "/etc/passwd", "/etc/group"
        mounts += [_ro_bind(passwd_path, "/etc/passwd"), _ro_bind(group_path, "/etc/group")]
    elif opts.containerauth:
        passwd_path = in_view(rootfs, "etc/passwd", view)
        group_path = in_view(rootfs, "etc/group", view)
    else:
        caller = caller or Caller.current()
        passwd_path, group_path = add_caller(rootfs, caller, view)
    if not opts.nosysdirs:
        mounts += [_ro_bind(path, path) for path in HOST_FILES if os.path.exists(path)]
    if opts.bindhome:
        home = (caller.home if caller else None) or os.path.expanduser("~")
        if not os.path.isdir(home):
            raise UsageError(f"--bindhome: your home directory {home} does not exist",
                             "drop --bindhome or bind another directory with -v")
        mounts.append(Volume(home, home, False).mount())
    mounts += [v.mount() for v in volumes]

    user_spec = opts.user if opts.user is not None else (image.get("User") or "")
    me = (caller.uid, caller.gid) if caller else (os.getuid(), os.getgid())
    if job is not None:
        user_spec = mpi.user(opts.user, me)
    if user_spec:
        uid, gid, home_in = resolve_user(user_spec, read_db(passwd_path), read_db(group_path))
        if job is not None:
            mpi.check_user(uid, gid, me)
    else:  # (never a rank: those get the caller's ids)
        uid, gid, home_in = 0, 0, "/root"
    env.setdefault("HOME", home_in)

    annotations = dict(opts.annotations)
    annotations[ANNOTATION_NET] = opts.net
    if opts.runtime is not None:
        annotations[ANNOTATION_RUNTIME] = opts.runtime
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
    if opts.net == "none":
        namespaces.append({"type": "network"})
    config: Dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {"terminal": bool(opts.terminal), "user": {"uid": uid, "gid": gid}, "args": args,
                    "env": [f"{k}={v}" for k, v in env.items()], "cwd": cwd_in},
        "root": {"path": "rootfs" if os.path.join(container_dir, "rootfs") == rootfs else rootfs,
                 "readonly": False},
        "mounts": mounts,
        "linux": {"namespaces": namespaces},
        "annotations": annotations,
    }
    if opts.hostname:
        config["hostname"] = opts.hostname
    if job is not None:
        mpi.apply(config, job, net=opts.net)
    return config


def _host_cwd(cwd: Optional[str], host: Mapping[str, str]) -> Optional[str]:
    """The caller's working directory as the shell names it ($PWD, when it is that directory), so a path
    through a symlink stays the path the user knows."""
    if cwd:
        return cwd
    try:
        real = os.getcwd()
    except FileNotFoundError:  # the directory is gone
        return None
    logical = host.get("PWD")
    try:
        if logical and logical.startswith("/") and os.path.samefile(logical, real):
            return posixpath.normpath(logical)
    except OSError:
        pass
    return real


def _ro_bind(source: str, destination: str) -> Dict[str, Any]:
    return {"destination": destination, "type": "bind", "source": source, "options": ["rbind", "ro"]}

