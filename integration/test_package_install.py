"""Installing Debian packages into a fresh container with the container's own apt, as a researcher
would, with no `hpcbox run` option beyond ``--engine``; then running what was installed under every
engine.

The packages are few and small but cover what used to break:

- ``openssh-client``: its maintainer script adds a system group (``_ssh`` on Debian 12, ``ssh`` on 11)
  and gives ``/usr/bin/ssh-agent`` to it (``chgrp`` to an id other than the caller's);
- ``libibverbs1``: adds the ``rdma`` group, and ships a library, so dpkg runs libc-bin's ``ldconfig``
  trigger (a statically linked program);
- ``uuid-runtime``: adds the system user ``uuidd`` and ``chown``s its state directory to it.

The Debian 12 container of runc also gets ``python3-pip`` (one install of Python: it costs minutes
under ptrace), and in it container root installs from PyPI into the system Python (``pip install
--break-system-packages``) a pure package and one with a compiled extension in its wheel, under
each engine in turn (uninstalling in between); each install is imported as root and ``--as-me``,
the last one under every engine. Skipped, saying so, when PyPI cannot be reached from the
container. In the same container, under ptrace and preload, every stat form shows what ``chown``
set; with a full id map, ``clone`` and ``export`` keep the owners apt and dpkg gave.

``apt-get update`` itself needs apt's download sandbox (user ``_apt``). Under runc that works with a
full map of subordinate ids, and with a single mapped id through the container-private apt setting
(``runc-single`` runs the same install with the map forced to one id).

These tests need Debian's package mirror, read from the image's own ``/etc/apt/sources.list``; they
are skipped, saying so, only when it cannot be reached. Each install downloads the package lists
and about 3 MB of packages (apt's caches are not shared between the runs: a full-map run gives
``partial/`` to ``_apt``, a subordinate id that the other engines cannot write to).
"""

from __future__ import annotations

import json
import re
import socket
import tarfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import test_run_common as common
from test_cli_common import ok

from hpcbox.containers import ContainerStore
from hpcbox.store import Store

PACKAGES = ["openssh-client", "libibverbs1", "uuid-runtime"]
SSH_GROUP = {"debian12": "_ssh", "debian11": "ssh"}
INSTALL_ENGINES = ("runc", "runc-single", "ptrace", "preload")
# pip into the container's system Python (Debian 12: python3-pip); the versions are pinned for Python 3.11
PIP_PACKAGES = ["six==1.16.0", "MarkupSafe==2.1.5"]  # pure Python; a wheel with a C extension
PIP_IMPORT = ("import six, markupsafe, markupsafe._speedups as c; "
              "print(six.__version__, markupsafe.__version__, c.__file__)")
PIP_IMPORTED = "1.16.0 2.1.5 /usr/local/lib/python3.11/dist-packages/markupsafe/_speedups.cpython-311-"
# Where pip cannot reach the index, rather than a failure of the install itself.
PIP_OFFLINE = ("Failed to establish a new connection", "Temporary failure in name resolution",
               "Network is unreachable", "Connection refused", "No route to host")
# Sites behind a TLS-inspecting proxy trust its CA locally: the container needs it too.
HOST_CAS = Path("/usr/local/share/ca-certificates")
# What each installed program must do under every engine afterwards (command, expected output regex).
USE = [
    (["sh", "-c", "rm -f /tmp/k /tmp/k.pub; ssh-keygen -q -t ed25519 -N '' -C made-in-box -f /tmp/k && "
             "cut -d' ' -f1,3 /tmp/k.pub"],
     r"^ssh-ed25519 made-in-box$"),
    (["uuidgen", "-r"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    (["sh", "-c", "getent group rdma | cut -d: -f1; getent passwd uuidd | cut -d: -f1"], r"^rdma\nuuidd$"),
    (["sh", "-c", f"dpkg-query -W -f '${{db:Status-Abbrev}}${{Package}}\\n' {' '.join(PACKAGES)} | sort"],
     r"^" + r"\n".join(f"ii {p}" for p in sorted(PACKAGES)) + r"$"),
]


class AptStore(common.RunStore):
    def container(self, name: str):
        return ContainerStore(Store(self.home)).get(name)


@pytest.fixture(scope="module")
def apt_store(tmp_path_factory, registry_http) -> AptStore:
    store = AptStore(tmp_path_factory.mktemp("apt-home") / "home")
    for image in ("debian12", "debian11"):
        pushed = registry_http.push(image, f"hpcbox/apt-{image}", "1")
        ok(store("pull", "-q", pushed.ref))
        ok(store("tag", pushed.ref, image))
    return store


def _mirror(rootfs: Path) -> Tuple[str, int]:
    """The host and port of the first `deb http://...` source of the image."""
    for path in [rootfs / "etc/apt/sources.list", *sorted((rootfs / "etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        match = re.search(r"^\s*deb\s+(?:\[[^]]*\]\s+)?http://([^/:\s]+)(?::(\d+))?/", text, re.M) or \
            re.search(r"^URIs:\s*http://([^/:\s]+)(?::(\d+))?/", text, re.M)
        if match:
            return match.group(1), int(match.group(2) or 80)
    pytest.fail(f"the image has no http source in {rootfs}/etc/apt")


def _need_mirror(rootfs: Path) -> None:
    host, port = _mirror(rootfs)
    try:
        socket.create_connection((host, port), timeout=15).close()
    except OSError as exc:
        pytest.skip(f"Debian's package mirror {host}:{port} (from the image's sources) is unreachable: {exc}")


def _engine_args(store: AptStore, engine: str) -> List[str]:
    return common.engine_args(store, engine.partition("-")[0])


def _create(store: AptStore, image: str, engine: str) -> str:
    name = f"apt-{image}-{engine}"
    ok(store("create", "--name", name, image))
    if engine == "runc-single":  # the map of a host without subordinate ids
        store.container(name).update(settings={"annotations": {"org.hpcbox.runc.idmap": "single"}})
    return name


def _rootfs(store: AptStore, name: str) -> Path:
    [rootfs] = [Path(c["rootfs"]) for c in json.loads(ok(store("ps", "--json")).stdout) if name in c["names"]]
    return rootfs


def _install(store: AptStore, image: str, engine: str) -> str:
    """The commands of the README's "Everyday use", in a fresh container, under *engine*."""
    args = _engine_args(store, engine)
    name = _create(store, image, engine)
    _need_mirror(_rootfs(store, name))
    ok(store("run", *args, name, "apt-get", "update", input="", timeout=900))
    pip = ["python3-pip"] if _with_pip(image, engine) else []
    ok(store("run", *args, name, "apt-get", "install", "-y", "--no-install-recommends", *PACKAGES, *pip,
             input="", timeout=900))
    return name


def _with_pip(image: str, engine: str) -> bool:
    return image == "debian12" and engine == "runc"


def _host_cas() -> str:
    cas = sorted(HOST_CAS.glob("*.crt")) if HOST_CAS.is_dir() else []
    return "".join(path.read_text() for path in cas)


def _pip_install(store: AptStore, engine: str, name: str) -> None:
    """pip into the system Python as container root under *engine*, as the README's "Everyday use"
    shows; then the import as root and as me."""
    args = _engine_args(store, engine)
    proc = store("run", *args, name, "pip", "install", "-q", "--break-system-packages", *PIP_PACKAGES,
                 input="", timeout=900)
    if proc.returncode != 0 and any(words in proc.stdout + proc.stderr for words in PIP_OFFLINE):
        pytest.skip(f"PyPI cannot be reached from the container: {proc.stderr.strip().splitlines()[-1:]}")
    ok(proc)
    _pip_imports(store, name, [engine])


def _pip_imports(store: AptStore, name: str, engines) -> None:
    for engine in engines:
        args = _engine_args(store, engine)
        for who in ([], ["--as-me"]):
            proc = ok(store("run", *args, *who, name, "python3", "-c", PIP_IMPORT, input="", cwd="/"))
            assert proc.stdout.startswith(PIP_IMPORTED), (engine, who, proc.stdout, proc.stderr)


def _pip_under_every_engine(store: AptStore, name: str) -> None:
    cas = _host_cas()
    if cas:
        ok(store("run", *_engine_args(store, "runc"), name, "sh", "-c", "cat > "
                 "/usr/local/share/ca-certificates/site.crt && update-ca-certificates >/dev/null", input=cas))
    for n, engine in enumerate(common.RUN_ENGINES):
        if n:
            ok(store("run", *_engine_args(store, engine), name, "pip", "uninstall", "-q", "-y",
                     "--break-system-packages", *(p.partition("=")[0] for p in PIP_PACKAGES), input=""))
        _pip_install(store, engine, name)
    _pip_imports(store, name, common.RUN_ENGINES[:-1])  # what the last engine installed, by the others


# Every stat form after a chown: by path (stat, lstat), by descriptor (fstat), by a directory's
# descriptor and a name (fstatat), the descriptor itself (coreutils' `stat -`: statx with
# AT_EMPTY_PATH), and `ls -ln` (statx by path).
STAT_FORMS = """set -e
rm -rf /tmp/owned && mkdir /tmp/owned && echo x > /tmp/owned/f && ln -s f /tmp/owned/l
chown 12:34 /tmp/owned/f && chown -h 56:78 /tmp/owned/l
python3 -c '
import os
d = os.open("/tmp/owned", os.O_RDONLY | os.O_DIRECTORY)
f = os.open("/tmp/owned/f", os.O_RDONLY)
for s in (os.stat("/tmp/owned/f"), os.fstat(f), os.stat("f", dir_fd=d), os.lstat("/tmp/owned/l"),
          os.stat("l", dir_fd=d, follow_symlinks=False), os.stat("/tmp/owned"), os.fstat(d)):
    print(s.st_uid, s.st_gid)
'
stat -c '%u %g' - < /tmp/owned/f
ls -ln /tmp/owned/f | cut -d' ' -f3,4
"""
STAT_ANSWERS = ["12 34", "12 34", "12 34", "56 78", "56 78", "0 0", "0 0", "12 34", "12 34"]


def _use_everywhere(store: AptStore, name: str) -> Dict[str, str]:
    """Run every installed program under every engine; return each engine's `stat` of ssh-agent."""
    groups = {}
    for engine in common.RUN_ENGINES:
        args = _engine_args(store, engine)
        for command, expected in USE:
            proc = ok(store("run", *args, name, *command, input=""))
            assert re.match(expected, proc.stdout.strip()), (engine, command, proc.stdout, proc.stderr)
        stat = ok(store("run", *args, name, "stat", "-c", "%G %a", "/usr/bin/ssh-agent"))
        groups[engine] = stat.stdout.strip()
    return groups


def _check_and_remove(store: AptStore, image: str, engine: str, name: str) -> None:
    if _with_pip(image, engine):
        _pip_under_every_engine(store, name)
        for path_engine in ("ptrace", "preload"):
            proc = ok(store("run", *_engine_args(store, path_engine), name, "sh", "-c", STAT_FORMS))
            assert proc.stdout.splitlines() == STAT_ANSWERS, (path_engine, proc.stdout, proc.stderr)
    groups = _use_everywhere(store, name)
    # the maintainer script's group and the ownership it set
    etc_group = (_rootfs(store, name) / "etc/group").read_text()
    assert re.search(rf"^{SSH_GROUP[image]}:x:\d+:", etc_group, re.M), etc_group
    if engine == "runc" and "full range" in _runc_reason(store):
        assert groups["runc"] == f"{SSH_GROUP[image]} 2755", groups  # a real chgrp to a subordinate id
        _clone_and_export_keep_owners(store, image, name)
    if engine in ("ptrace", "preload"):  # the chgrp, as both path engines record and report it
        assert groups["ptrace"] == groups["preload"] == f"{SSH_GROUP[image]} 2755", groups
    ok(store("rm", name))  # also what apt gave to _apt and the other subordinate ids
    assert name not in ok(store("ps")).stdout


# Files that apt and dpkg gave to subordinate ids: _apt's download directory (0700), ssh-agent's group.
OWNED = {"var/cache/apt/archives/partial": ("_apt", "root"), "usr/bin/ssh-agent": ("root", "{group}")}


def _clone_and_export_keep_owners(store: AptStore, image: str, name: str) -> None:
    """`hpcbox clone` and `hpcbox export` of a container whose files belong to subordinate ids: both
    read every file and keep the owners (the tar names them from the container's passwd/group)."""
    owned = {path: (user, group.format(group=SSH_GROUP[image])) for path, (user, group) in OWNED.items()}
    args = _engine_args(store, "runc")
    ok(store("clone", "--name", f"{name}-clone", name))
    stat = ok(store("run", *args, f"{name}-clone", "stat", "-c", "%U %G", *(f"/{p}" for p in owned)))
    assert stat.stdout.split("\n")[:-1] == [" ".join(owner) for owner in owned.values()], stat.stdout
    ok(store("rm", f"{name}-clone"))
    tar_path = store.home.parent / f"{name}.tar"
    ok(store("export", "-o", str(tar_path), name))
    with tarfile.open(tar_path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for path, (user, group) in owned.items():
            assert (members[path].uname, members[path].gname) == (user, group), vars(members[path])
        assert members["usr/bin/ssh-agent"].mode & 0o2000  # setgid kept after the chown
        assert members["var/cache/apt/archives/partial"].uid != 0
    tar_path.unlink()


def _runc_reason(store: AptStore) -> str:
    info = json.loads(ok(store("info", "--json")).stdout)
    return info["engines"]["runc"]["reason"]


@pytest.mark.parametrize("engine", INSTALL_ENGINES)
def test_install_packages_into_debian12_then_run_them_everywhere(apt_store, engine):
    name = _install(apt_store, "debian12", engine)
    _check_and_remove(apt_store, "debian12", engine, name)


# CI time: Debian 11 under ptrace and preload is installed by test_package_install_trace.py
@pytest.mark.parametrize("engine", ["runc"])
def test_install_packages_into_debian11_then_run_them_everywhere(apt_store, engine):
    name = _install(apt_store, "debian11", engine)
    _check_and_remove(apt_store, "debian11", engine, name)


def test_single_id_map_gets_the_apt_setting_and_a_full_map_removes_it(apt_store):
    name = _create(apt_store, "debian12", "runc-single")
    conf = _rootfs(apt_store, name) / "etc/apt/apt.conf.d/00hpcbox-sandbox-user"
    args = _engine_args(apt_store, "runc")
    assert ok(apt_store("run", *args, name, "apt-config", "dump", "APT::Sandbox::User")).stdout.strip() == \
        'APT::Sandbox::User "root";'
    assert conf.is_file()
    if "full range" not in _runc_reason(apt_store):
        return
    apt_store.container(name).update(settings={})
    ok(apt_store("run", *args, name, "true"))
    assert not conf.exists()
    ok(apt_store("rm", name))
