"""Property-based tests: the C path core against the pure-Python reference model.

Hypothesis builds a real rootfs (directories, files, absolute/relative symlinks, loops, links
that climb above the root) plus host directories outside it that are bound into the guest, then
a canonical cwd and a guest path full of ".", ".." and "//". The C translation must equal the
model (result or errno), never leave the rootfs or a binding's host path, and map back.

And against the kernel itself: the same call (rmdir, unlink, rename, mkdir, open, stat, ...) on
the same tree, once in a real chroot (a user namespace of the test's own) with the guest path and
once on the host with the translated path, must give the same result or errno and leave the same
tree (the translation may not normalise away what the kernel would refuse: rmdir("d/."), "f/").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hpcbox_engine_ptrace import resolve, translate, untranslate

NAMES = ["a", "b", "c", "d"]
name = st.sampled_from(NAMES)
component = st.sampled_from([*NAMES, ".", "..", ""])  # "" makes "//"


@st.composite
def link_targets(draw):
    parts = draw(st.lists(component, min_size=1, max_size=5))
    lead = draw(st.sampled_from(["", "/", "../../", "../../../../../../"]))
    trail = draw(st.sampled_from(["", "", "/"]))
    target = lead + "/".join(parts) + trail
    return target or "."


@st.composite
def entries(draw):
    """(relative path, kind, link target) with kind in dir/file/link."""
    items = draw(
        st.lists(
            st.tuples(
                st.lists(name, min_size=1, max_size=3).map(tuple),
                st.sampled_from(["dir", "dir", "file", "link", "link"]),
                link_targets(),
            ),
            max_size=14,
        )
    )
    return items


@st.composite
def guest_paths(draw):
    parts = draw(st.lists(component, min_size=1, max_size=7))
    absolute = draw(st.booleans())
    trail = draw(st.sampled_from(["", "", "/"]))
    path = ("/" if absolute else "") + "/".join(parts) + trail
    return path or "."


bindings_strategy = st.lists(
    st.tuples(st.lists(name, min_size=1, max_size=2).map(lambda p: "/" + "/".join(p)), entries()),
    max_size=2,
    unique_by=lambda b: b[0],
)


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except OSError as e:
        return ("errno", e.errno)


def assert_confined(host: str, root: str, binding_hosts) -> None:
    """host lies at or under root or a binding's host path, through no host symlink."""
    bare = host.rstrip("/") or "/"
    prefixes = [root, *binding_hosts]
    owner = max(
        (p for p in prefixes if bare == p or bare.startswith(p.rstrip("/") + "/")), key=len, default=None
    )
    assert owner is not None, f"{host} escapes {prefixes}"
    parent = os.path.dirname(bare)
    if bare != owner and os.path.isdir(parent):
        real = os.path.realpath(parent)
        assert real == parent, f"{host}: its directory {parent} goes through a symlink to {real}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=entries(),
    binds=bindings_strategy,
    data=st.data(),
    how=st.sampled_from(["follow", "nofollow", "parent", "rmdir", "unlink", "rename"]),
)
def test_c_core_equals_the_model(guestpath_model, tree, binds, data, how):
    tmp = Path(tempfile.mkdtemp(prefix="gp-prop-"))
    try:
        root = tmp / "root"
        guestpath_model.build_tree(root, tree)
        bindings = []
        for i, (guest, items) in enumerate(binds):
            host = tmp / f"host{i}"
            guestpath_model.build_tree(host, items)
            bindings.append((guest, str(host)))
        cwd = data.draw(st.sampled_from(guestpath_model.cwd_candidates(root, bindings)), label="cwd")
        path = data.draw(guest_paths(), label="path")
        kwargs = {"cwd": cwd, "bindings": bindings, **guestpath_model.translate_kwargs(how)}

        got = outcome(translate, root, path, **kwargs)
        want = outcome(guestpath_model.to_host, str(root), path, **kwargs)
        assert got == want, f"path {path!r}: C {got} != model {want}"
        event(f"outcome: {got[0] if got[0] == 'ok' else os.strerror(got[1])}")
        if got[0] == "ok" and any(got[1] == h or got[1].startswith(h + "/") for _, h in bindings):
            event("outcome: inside a binding")

        got_canon = outcome(resolve, root, path, **kwargs)
        assert got_canon == outcome(guestpath_model.canonical, str(root), path, **kwargs)

        if got[0] == "ok":
            assert_confined(got[1], os.path.realpath(root), [h for _, h in bindings])
            canon = got_canon[1]
            if how in ("follow", "nofollow") and os.path.lexists(got[1]) and not canon.endswith("/"):
                back = untranslate(root, got[1].rstrip("/") or "/", bindings, strict=True)
                assert back == canon
                assert guestpath_model.to_guest(str(root), got[1], bindings) == (canon, True)
    finally:
        shutil.rmtree(tmp)


@settings(max_examples=100, deadline=None)
@given(
    host_parts=st.lists(st.sampled_from([*NAMES, ".", "..", ""]), max_size=6),
    under=st.sampled_from(["root", "host0", "host1", "elsewhere", "/"]),
)
def test_untranslate_equals_the_model(guestpath_model, tmp_path_factory, host_parts, under):
    tmp = tmp_path_factory.mktemp("untr")
    for d in ("root", "host0", "host1"):
        (tmp / d).mkdir(exist_ok=True)
    bindings = [("/mnt/a", str(tmp / "host0")), ("/b", str(tmp / "host1")), ("/c", str(tmp / "host1"))]
    base = "/" if under == "/" else str(tmp / under)
    host = base + "/" + "/".join(host_parts)
    got = untranslate(tmp / "root", host, bindings)
    want, inside = guestpath_model.to_guest(str(tmp / "root"), host, bindings)
    assert got == want
    if inside:
        assert got.startswith("/") and ".." not in got.split("/")


CALL_NAMES = sorted(
    ["stat", "lstat", "open_dir", "open_creat", "creat_excl", "mkdir", "mkfifo", "symlink", "link", "rmdir",
     "unlink", "rename"]
)


@pytest.fixture(scope="module")
def chroot_available(guestpath_model, tmp_path_factory):
    probe = tmp_path_factory.mktemp("chroot-probe")
    try:
        guestpath_model.in_chroot(str(probe), "/", "stat", ["/"])
    except OSError as e:
        pytest.skip(f"the kernel oracle needs an unprivileged user namespace with chroot: {e}")


@st.composite
def final_paths(draw):
    """Guest paths whose final component is what the kernel treats specially: ".", "..", a name
    followed by "/", or "/" alone; a directory part that mostly exists."""
    lead = draw(st.sampled_from(["", "/", "/a/", "a/", "../", "/b//", "a/b/", "/./a/../b/"]))
    last = draw(st.sampled_from([*NAMES, ".", "..", "", "b/.", "a/.."]))
    trail = draw(st.sampled_from(["", "/", "/", "//"]))
    return (lead + last + trail) or "."


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=entries(), data=st.data(), call=st.sampled_from(CALL_NAMES))
def test_translated_call_equals_the_kernel_in_a_chroot(guestpath_model, chroot_available, tree, data, call):
    tmp = Path(tempfile.mkdtemp(prefix="gp-kernel-"))
    try:
        kernel_root, engine_root = tmp / "kernel", tmp / "engine"
        guestpath_model.build_tree(kernel_root, tree)
        guestpath_model.build_tree(engine_root, tree)
        assert guestpath_model.snapshot(str(kernel_root)) == guestpath_model.snapshot(str(engine_root))
        cwd = data.draw(st.sampled_from(guestpath_model.cwd_candidates(engine_root)), label="cwd")
        hows = guestpath_model.CALLS[call]
        path = st.one_of(final_paths(), guest_paths())
        paths = [data.draw(path, label=f"path{i}") for i in range(len(hows))]

        want = guestpath_model.in_chroot(str(kernel_root), cwd, call, paths)
        hosts: list = []
        try:
            for p, h in zip(paths, hows):
                hosts.append(translate(engine_root, p, cwd=cwd, **guestpath_model.translate_kwargs(h, p)))
        except OSError as e:
            got = ("errno", guestpath_model.link_old_first(call, hosts, e.errno))
        else:
            got = guestpath_model.perform(call, hosts)
        assert got == want, f"{call}{tuple(paths)} from {cwd!r}: translated {got}, chroot {want}"
        assert guestpath_model.snapshot(str(engine_root)) == guestpath_model.snapshot(str(kernel_root))
        event(f"{call}: {want[0] if want[0] == 'ok' else os.strerror(want[1])}")
    finally:
        shutil.rmtree(tmp)
