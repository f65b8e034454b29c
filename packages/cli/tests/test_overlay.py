"""Overlay containers in the container store: shared image rootfs, no copy, fallback, cleanup, merged view.

Tests that mount need rootless overlayfs (Linux 5.11+ with user namespaces); they skip with the probe's
reason elsewhere. The fallback and the bookkeeping are tested everywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hpcbox import storefiles
from hpcbox.containers import ContainerError, ContainerStore
from hpcbox.containers import overlay as overlay_mod
from hpcbox.store import Store

IMAGE = "example.org/test/img:1"
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"


def tar_layer(entries) -> bytes:
    """entries: (name, kind, mode, payload) with kind file|dir|symlink."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, payload in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = tarfile.DIRTYPE if kind == "dir" else tarfile.SYMTYPE
            info.linkname = payload or ""
            tar.addfile(info)
    return raw.getvalue()


BASE = [("etc", "dir", 0o755, None), ("etc/os-release", "file", 0o644, b"ID=test\n"),
        ("data", "dir", 0o755, None), ("data/gone", "file", 0o644, b"x"),
        ("locked", "dir", 0o000, None)]
TOP = [("data/.wh.gone", "file", 0o644, b""), ("data/new", "file", 0o600, b"new")]


def add_image(store: Store, name: str, layers) -> str:
    """Put an image made of *layers* (uncompressed tar bytes) into *store* under *name*."""
    store.init()
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_digest = store.ingest_bytes(config)
    descs = [{"mediaType": OCI_TAR, "digest": store.ingest_bytes(b), "size": len(b)} for b in layers]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": descs}).encode()
    digest = store.ingest_bytes(manifest)
    store.add_image({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                     "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"}},
                    [name], [digest, config_digest, *(d["digest"] for d in descs)])
    return digest


@pytest.fixture
def cs(tmp_path):
    store = Store(tmp_path / "home")
    add_image(store, IMAGE, [tar_layer(BASE), tar_layer(TOP)])
    return ContainerStore(store)


@pytest.fixture
def mountable(tmp_path):
    (tmp_path / "probe").mkdir()
    ok, why = overlay_mod.supported(tmp_path / "probe")  # (a success is recorded in tmp_path)
    if not ok:
        pytest.skip(why)


@pytest.fixture
def forced(monkeypatch):
    """Overlay creates without the probe (bookkeeping tests that never mount)."""
    monkeypatch.setattr(overlay_mod, "supported", lambda directory: (True, "assumed by the test"))


def test_a_successful_probe_is_recorded_and_reused(tmp_path, monkeypatch):
    """The runner's overlay probe runs once per kernel, filesystem and runner (recorded beside the
    containers directory, never in it); a record that names another kernel is not taken."""
    from hpcbox_engine_runc import overlay as engine_overlay

    containers = tmp_path / "containers"
    containers.mkdir()
    if overlay_mod._probe_key(containers) is None:
        pytest.skip("the runc engine's runner is not built here")
    calls = []
    monkeypatch.setattr(engine_overlay, "supported", lambda d: calls.append(d) or (True, "probed"))
    assert overlay_mod.supported(containers)[0] and overlay_mod.supported(containers)[0]
    assert len(calls) == 1
    record = tmp_path / storefiles.PROBE_RECORD
    assert record.read_text().startswith(os.uname().release + " ")
    record.write_text(record.read_text().replace(os.uname().release, "0.0-another-kernel", 1))
    assert overlay_mod.supported(containers)[0]
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [storefiles.PROBE_RECORD, "containers"]
    assert list(containers.iterdir()) == []


def test_a_failed_probe_is_never_recorded(tmp_path, monkeypatch):
    from hpcbox_engine_runc import overlay as engine_overlay

    containers = tmp_path / "containers"
    containers.mkdir()
    calls = []
    monkeypatch.setattr(engine_overlay, "supported", lambda d: calls.append(d) or (False, "refused here"))
    assert overlay_mod.supported(containers) == (False, "refused here")
    assert overlay_mod.supported(containers) == (False, "refused here")
    assert len(calls) == 2 and [p.name for p in tmp_path.iterdir()] == ["containers"]


def hpcbox(home, *args, check=True):
    done = subprocess.run([sys.executable, "-m", "hpcbox", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_overlay_create_makes_no_copy_and_shares_one_lower(cs, forced):
    a = cs.create(IMAGE, name="a", storage="overlay")
    b = cs.create(IMAGE, storage="overlay")
    assert a.storage == b.storage == "overlay" and a.lower == b.lower
    lower = Path(a.lower)
    assert lower == cs.store.home / "images-rootfs" / a.image["manifest"].split(":")[1]
    assert (lower / "etc/os-release").read_bytes() == b"ID=test\n"
    assert not (lower / "data/gone").exists() and (lower / "data/new").read_bytes() == b"new"
    for c in (a, b):
        assert list(c.upper.iterdir()) == [] and list(c.rootfs.iterdir()) == [] and c.work.is_dir()
        assert json.loads((c.dir / "container.json").read_text())["storage"] == "overlay"
    assert cs.get("a").storage == "overlay" and cs.get("a").lower == str(lower)
    assert sorted(p.name for p in lower.parent.iterdir()) == [lower.name]  # built once, no temp left


def test_copy_is_still_the_default_and_env_selects_overlay(cs, forced, monkeypatch):
    monkeypatch.delenv(overlay_mod.MODE_ENV, raising=False)
    assert cs.create(IMAGE).storage == "copy"
    monkeypatch.setenv(overlay_mod.MODE_ENV, "overlay")
    assert cs.create(IMAGE).storage == "overlay"
    assert cs.create(IMAGE, storage="copy").storage == "copy"
    monkeypatch.setenv(overlay_mod.MODE_ENV, "layered")
    with pytest.raises(ContainerError, match="HPCBOX_CREATE_MODE='layered' is not a create mode"):
        cs.create(IMAGE)


def test_unsupported_overlay_falls_back_to_a_copy_and_says_why(cs, monkeypatch):
    monkeypatch.setattr(overlay_mod, "supported", lambda directory: (False, "kernel 5.4 is too old"))
    notes = []
    c = cs.create(IMAGE, storage="overlay", on_note=notes.append)
    assert c.storage == "copy" and (c.rootfs / "etc/os-release").read_bytes() == b"ID=test\n"
    assert len(notes) == 1 and "kernel 5.4 is too old" in notes[0] and "copy" in notes[0]
    assert not (cs.store.home / "images-rootfs").exists()


def test_cli_fallback_note_on_stderr(tmp_path):
    store = Store(tmp_path / "home")
    add_image(store, IMAGE, [tar_layer(BASE)])
    script = ("import sys; from hpcbox.containers import overlay; "
              "overlay.supported = lambda d: (False, 'no overlay in this test'); "
              "from hpcbox.main import main; sys.exit(main())")
    done = subprocess.run([sys.executable, "-c", script, "--home", str(store.home), "create", "--overlay",
                           IMAGE], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("no overlay in this test") == 1 and "made a copy" in done.stderr
    assert ContainerStore(store).get(done.stdout.strip()).storage == "copy"


def _create_one(home, queue):
    try:
        overlay_mod.supported = lambda directory: (True, "assumed")
        c = ContainerStore(Store(home)).create(IMAGE, storage="overlay")
        queue.put((c.id, c.lower))
    except BaseException as exc:  # reported to the parent
        queue.put(("error", repr(exc)))


def test_concurrent_overlay_creates_share_one_lower(cs):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_create_one, args=(cs.store.home, queue)) for _ in range(8)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(300)  # a deadline, not an expectation
    assert all(r[0] != "error" for r in results), results
    assert len({r[0] for r in results}) == 8 and len({r[1] for r in results}) == 1
    assert len(cs.list()) == 8
    base = cs.store.home / "images-rootfs"
    assert [p.name for p in base.iterdir()] == [Path(results[0][1]).name]


def test_rm_and_cleanup_of_the_image_rootfs(cs, forced):
    a = cs.create(IMAGE, storage="overlay")
    lower = Path(a.lower)
    os.makedirs(a.work / "work")
    os.chmod(a.work / "work", 0)  # what overlayfs leaves behind
    (a.upper / "file").write_text("x")
    assert overlay_mod.clean_image_rootfs(cs.store, cs) == []  # the image still refers to it
    cs.remove(a.id)
    assert not a.dir.exists() and sorted(os.listdir(cs.dir)) == []
    cs.store.untag(IMAGE)
    b_dir = lower.parent / ".tmp-deadbeef-0000"
    b_dir.mkdir()  # a killed build's leftover
    removed = overlay_mod.clean_image_rootfs(cs.store, cs)
    assert sorted(removed) == sorted([lower.name, b_dir.name]) and list(lower.parent.iterdir()) == []


def test_a_container_keeps_its_image_rootfs_after_rmi(cs, forced):
    a = cs.create(IMAGE, storage="overlay")
    cs.store.untag(IMAGE)
    assert overlay_mod.clean_image_rootfs(cs.store, cs) == []
    assert Path(a.lower).is_dir()


def test_merged_copy_honours_whiteouts_and_opaque_dirs(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "etc", lower / "opaque", upper / "etc", upper / "opaque"):
        d.mkdir(parents=True)
    (lower / "etc/keep").write_text("lower")
    (lower / "etc/changed").write_text("lower")
    (lower / "etc/deleted").write_text("lower")
    (lower / "opaque/old").write_text("lower")
    (upper / "etc/changed").write_text("upper")
    (upper / "etc/added").write_text("upper")
    (upper / "opaque/new").write_text("upper")
    try:  # the kernel's whiteout: a 0/0 character device (unprivileged users may make it since 5.8)
        os.mknod(upper / "etc/deleted", stat.S_IFCHR | 0o600, 0)
    except PermissionError:
        (upper / "etc/deleted").write_bytes(b"")
        try:
            os.setxattr(upper / "etc/deleted", overlay_mod.WHITEOUT_XATTR, b"")
        except OSError as exc:
            pytest.skip(f"cannot make a whiteout here ({exc})")
    try:
        os.setxattr(upper / "opaque", "user.overlay.opaque", b"y")
    except OSError as exc:
        pytest.skip(f"no user xattrs here ({exc})")
    out = tmp_path / "out"
    overlay_mod.merged_copy(lower, upper, out)
    assert sorted(os.listdir(out / "etc")) == ["added", "changed", "keep"]
    assert (out / "etc/changed").read_text() == "upper" and (out / "etc/keep").read_text() == "lower"
    assert os.listdir(out / "opaque") == ["new"]
    assert (lower / "etc/deleted").exists()  # the lower is never written


# -- with a real mount ------------------------------------------------------------------------------


def _busybox_layer() -> bytes:
    """A one-layer image holding the host's static busybox (Debian's busybox-static)."""
    busybox = "/bin/busybox"
    if not os.path.exists(busybox):
        pytest.skip("needs /bin/busybox (Debian's busybox-static)")
    data = Path(busybox).read_bytes()
    raw = io.BytesIO()
    files = {"etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n", "etc/group": b"root:x:0:\n",
             "etc/motd": b"hello\n", "etc/issue": b"bb\n", "bin/busybox": data}
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o755 if name == "bin/busybox" else 0o644
            tar.addfile(info, io.BytesIO(content))
        for applet in ("sh", "cat", "rm", "echo", "ls", "true"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return raw.getvalue()


@pytest.fixture
def bb(tmp_path, mountable):
    store = Store(tmp_path / "home")
    add_image(store, "example.org/test/bb:1", [_busybox_layer()])
    return store


def test_writes_stay_in_the_container_and_deletes_are_whiteouts(bb):
    home = bb.home
    a = hpcbox(home, "create", "--overlay", "--name", "a", "example.org/test/bb:1").stdout.strip()
    hpcbox(home, "create", "--overlay", "--name", "b", "example.org/test/bb:1")
    cs = ContainerStore(bb)
    ca, cb = cs.get("a"), cs.get("b")
    assert ca.id == a and os.stat(ca.lower).st_ino == os.stat(cb.lower).st_ino
    assert "overlay" in hpcbox(home, "ps").stdout
    done = hpcbox(home, "run", "a", "/bin/sh", "-c",
                  "echo mine > /etc/motd && echo new > /tmp/new && rm /etc/issue && cat /etc/motd")
    assert done.stdout == "mine\n"
    assert hpcbox(home, "run", "a", "/bin/cat", "/etc/motd").stdout == "mine\n"
    assert hpcbox(home, "run", "b", "/bin/cat", "/etc/motd").stdout == "hello\n"
    assert hpcbox(home, "run", "a", "/bin/ls", "/etc/issue", check=False).returncode != 0
    assert hpcbox(home, "run", "b", "/bin/ls", "/etc/issue").returncode == 0
    lower = Path(ca.lower)
    assert (lower / "etc/motd").read_text() == "hello\n" and (lower / "etc/issue").exists()
    assert (ca.upper / "etc/motd").read_text() == "mine\n" and not (lower / "tmp/new").exists()
    assert not (cb.upper / "etc/motd").exists() and not (cb.upper / "tmp/new").exists()
    assert list(ca.rootfs.iterdir()) == []  # mounted inside the container only: nothing stays on the host

    export = hpcbox(home, "export", "-o", str(bb.home.parent / "a.tar"), "a")
    assert export.returncode == 0
    with tarfile.open(bb.home.parent / "a.tar") as tar:
        names = set(tar.getnames())
        assert "etc/issue" not in names and "tmp/new" in names and "bin/busybox" in names
        assert tar.extractfile("etc/motd").read() == b"mine\n"
    clone = hpcbox(home, "clone", "--name", "c", "a").stdout.strip()
    cc = cs.get(clone)
    assert cc.storage == "copy" and (cc.rootfs / "etc/motd").read_text() == "mine\n"
    assert not (cc.rootfs / "etc/issue").exists()

    hpcbox(home, "rm", "a", "b", "c")
    assert os.listdir(cs.dir) == []
    hpcbox(home, "rmi", "example.org/test/bb:1")
    assert os.listdir(bb.home / "images-rootfs") == []


def test_other_engines_are_refused_with_the_reason(bb):
    home = bb.home
    hpcbox(home, "create", "--overlay", "--name", "a", "example.org/test/bb:1")
    for extra in (["--engine", "ptrace"], ["--engine", "singularity"], ["--runtime", "runc"]):
        done = hpcbox(home, "run", *extra, "a", "/bin/true", check=False)
        assert done.returncode == 125, done.stderr
        line = done.stderr.strip()
        assert "container a is an overlay container" in line and "recreate it without --overlay" in line
        assert len(line.splitlines()) == 1


def test_run_overlay_creates_and_removes(bb):
    done = hpcbox(bb.home, "run", "--overlay", "--rm", "example.org/test/bb:1", "/bin/cat", "/etc/motd")
    assert done.stdout == "hello\n"
    assert os.listdir(bb.containers_dir) == []
    assert len(os.listdir(bb.home / "images-rootfs")) == 1


# -- `run --rm --overlay IMAGE` without the store's classes (hpcbox.quickimage) ---------------------------

def _flattened(cs) -> str:
    """IMAGE made into its shared rootfs once, and the overlay probe recorded as a success (as after a
    first `run --overlay`); the store's home."""
    first = cs.create(IMAGE, storage="overlay")
    cs.remove(first.id, force=True)
    containers = os.fspath(cs.dir)
    key = storefiles.probe_key(containers)
    if key is None:
        pytest.skip("the runc engine's runner is not here")
    Path(storefiles.probe_record(containers)).write_text(key)
    return os.fspath(cs.store.home)


def _lean_args(home: str, *options: str):
    from hpcbox import quick

    return quick.parse_run(["--home", home, "run", "--rm", "--overlay", *options, IMAGE, "true"])


def test_the_lean_overlay_create_writes_what_the_store_writes(cs, forced):
    from hpcbox import quickimage

    home = _flattened(cs)
    made = quickimage._create(home, IMAGE, IMAGE)
    assert made is not None
    directory, meta = made
    full = cs.create(IMAGE, storage="overlay", durable=False)
    lean_record = json.loads(Path(directory, "container.json").read_text())
    full_record = json.loads((full.dir / "container.json").read_text())
    assert lean_record["id"] == meta["id"] == os.path.basename(directory) and lean_record["created"]
    for record in (lean_record, full_record):
        del record["id"], record["created"]
    assert list(lean_record.items()) == list(full_record.items())  # the same keys in the same order
    assert sorted(os.listdir(directory)) == sorted(os.listdir(full.dir))
    assert {c.id for c in cs.list()} == {meta["id"], full.id}
    assert [e for e in os.listdir(cs.dir) if e.startswith(".")] == []
    assert [e for e in os.listdir(cs.store.locks_dir) if e.startswith("create-")] == []


def test_a_lean_overlay_run_imports_little_and_leaves_nothing(cs, forced):
    """`hpcbox run --rm --overlay IMAGE`: up to the start of the runner and to its end, neither pathlib,
    re, json, typing, contextlib, shutil nor the store's classes are imported (~10 ms of every run),
    and the container is gone afterwards."""
    home = _flattened(cs)
    code = f"""
import sys
from hpcbox_oci_bundle import spawn as _spawn
real, seen = _spawn._fork_exec, {{}}
def fork_exec(argv, env, close):  # the runner is not needed: what was imported by then is
    seen["modules"] = set(sys.modules)
    return real(["/bin/true"], env, close)
_spawn._fork_exec = fork_exec
import hpcbox.quick
status = hpcbox.quick.main(["--home", {home!r}, "run", "--rm", "--overlay", "--engine", "runc", {IMAGE!r}])
heavy = {{"pathlib", "re", "json", "typing", "contextlib", "shutil", "hpcbox.store.layout",
         "hpcbox.containers.store"}}
print(status, sorted(heavy & seen.get("modules", {{"?"}})), sorted(heavy & set(sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout == "0 [] []\n", done.stdout + done.stderr
    assert cs.list() == [] and [e for e in os.listdir(cs.dir) if e.startswith(".")] == []


def test_the_lean_overlay_run_leaves_what_it_is_not_sure_of_to_the_store(cs, forced, monkeypatch):
    """Anything the lean path does not read with certainty goes to `run`'s own command, before the lean
    path has made anything: the store's classes then create, or say what is wrong."""
    from hpcbox import quick, quickimage

    home = _flattened(cs)
    assert quickimage._plain(_lean_args(home))
    plain = quick.parse_run(["--home", home, "run", "--rm", IMAGE, "true"])
    assert not quickimage._plain(plain)  # a copy, the default
    monkeypatch.setenv("HPCBOX_CREATE_MODE", " Overlay ")
    assert quickimage._plain(plain)  # overlay by default, as ContainerStore.create reads the variable
    monkeypatch.delenv("HPCBOX_CREATE_MODE")
    assert not quickimage._plain(_lean_args(home, "--name", "x"))
    assert not quickimage._plain(_lean_args(home, "--platform", "linux/arm64"))
    damaged = cs.dir / ("ab" * 32)
    damaged.mkdir()  # a container whose record is lost: its name may be the word typed
    assert quickimage.run_image(_lean_args(home)) is None
    damaged.rmdir()
    box = cs.create(IMAGE, name="box", storage="overlay")
    args = _lean_args(home)
    args.target = box.id[:6]  # a container's id prefix is a container
    assert quickimage.run_image(args) is None
    args.target = "box"
    assert quickimage.run_image(args) is None
    cs.remove(box.id, force=True)
    image = cs.store.find([IMAGE])
    lower = overlay_mod.rootfs_dir(cs.store, image.manifest_digest)
    os.rename(lower, f"{lower}.away")  # not flattened yet: the store builds it
    assert quickimage.run_image(_lean_args(home)) is None
    os.rename(f"{lower}.away", lower)
    blob = cs.store.blob_path(image.manifest_digest)
    good = blob.read_bytes()
    blob.chmod(0o644)
    blob.write_bytes(good[:-1])  # damaged: the store removes it and says how to repair
    assert quickimage.run_image(_lean_args(home)) is None
    blob.write_bytes(good)
    Path(storefiles.probe_record(os.fspath(cs.dir))).unlink()  # the probe is the store's to run
    assert quickimage.run_image(_lean_args(home)) is None
    assert cs.list() == [] and [e for e in os.listdir(cs.dir) if e.startswith(".")] == []


def test_a_plain_tree_is_removed_without_shutil_also_where_a_directory_lost_its_bits(tmp_path):
    top = tmp_path / "c"
    (top / "work" / "work").mkdir(parents=True)
    (top / "upper" / "etc").mkdir(parents=True)
    (top / "upper" / "etc" / "passwd").write_text("x")
    (top / "upper" / "link").symlink_to("/etc")
    (top / "work" / "work").chmod(0)  # as overlayfs leaves it
    assert storefiles.remove_plain_tree(str(top)) and not top.exists()
