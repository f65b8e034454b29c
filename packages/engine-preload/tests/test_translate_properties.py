"""Property-based: the library's own translation (hpcbox_preload_translate, the function behind
every wrapper, through cffi) against the reference model that the ptrace engine is tested with.

Hypothesis builds a real rootfs (directories, files, absolute and relative symlinks, loops, links
that climb above the root) and host directories bound into the guest, then a canonical cwd and a
guest path full of ".", ".." and "//". The library must give the model's host path or errno, stay
inside the rootfs or a binding, and map its result back to the guest path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hpcbox_engine_preload import translate, untranslate

NAMES = ["a", "b", "c"]
name = st.sampled_from(NAMES)
component = st.sampled_from([*NAMES, ".", "..", ""])


@st.composite
def link_targets(draw):
    lead = draw(st.sampled_from(["", "/", "../../", "../../../../"]))
    target = lead + "/".join(draw(st.lists(component, min_size=1, max_size=4)))
    return (target + draw(st.sampled_from(["", "/"]))) or "."


tree = st.lists(
    st.tuples(st.lists(name, min_size=1, max_size=3).map(tuple),
              st.sampled_from(["dir", "dir", "file", "link", "link"]), link_targets()),
    max_size=12,
)


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except OSError as e:
        return ("errno", e.errno)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=tree, bound=st.lists(st.tuples(st.sampled_from(["/a", "/b/c", "/m"]), tree), max_size=2,
                                  unique_by=lambda b: b[0]),
       data=st.data(), how=st.sampled_from(["follow", "nofollow", "parent", "rmdir", "unlink", "rename"]))
def test_library_translation_equals_the_model(guestpath_model, items, bound, data, how):
    tmp = Path(tempfile.mkdtemp(prefix="preload-prop-"))
    try:
        root = tmp / "root"
        guestpath_model.build_tree(root, items)
        bindings = []
        for i, (guest, host_items) in enumerate(bound):
            guestpath_model.build_tree(tmp / f"host{i}", host_items)
            bindings.append((guest, str(tmp / f"host{i}")))
        cwd = data.draw(st.sampled_from(guestpath_model.cwd_candidates(root, bindings)), label="cwd")
        parts = data.draw(st.lists(component, min_size=1, max_size=6), label="parts")
        path = (data.draw(st.sampled_from(["", "/"]), label="lead") + "/".join(parts)) or "."
        path += data.draw(st.sampled_from(["", "/"]), label="trail")

        kwargs = guestpath_model.translate_kwargs(how)
        got = outcome(translate, root, path, cwd=cwd, bindings=bindings, **kwargs)
        want = outcome(guestpath_model.to_host, str(root), path, cwd=cwd, bindings=bindings, **kwargs)
        assert got == want, f"{path!r} from {cwd!r}: library {got} != model {want}"
        event(f"outcome: {got[0] if got[0] == 'ok' else os.strerror(got[1])}")
        if got[0] != "ok":
            return
        host = got[1].rstrip("/") or "/"
        real_root = os.path.realpath(root)
        owners = [real_root, *[h for _, h in bindings]]
        assert any(host == o or host.startswith(o + "/") for o in owners), f"{host} escapes {owners}"
        if how in ("follow", "nofollow") and os.path.lexists(host) and not got[1].endswith("/"):
            canon = guestpath_model.canonical(str(root), path, cwd=cwd, bindings=bindings, **kwargs)
            assert untranslate(root, host, bindings) == (canon, True)
    finally:
        shutil.rmtree(tmp)


@given(host_parts=st.lists(st.sampled_from([*NAMES, ".", "..", ""]), max_size=5),
       under=st.sampled_from(["root", "h", "elsewhere"]))
@settings(max_examples=60, deadline=None)
def test_untranslate_equals_the_model(guestpath_model, tmp_path_factory, host_parts, under):
    tmp = tmp_path_factory.mktemp("untr")
    for d in ("root", "h"):
        (tmp / d).mkdir(exist_ok=True)
    bindings = [("/mnt/h", str(tmp / "h"))]
    host = str(tmp / under) + "/" + "/".join(host_parts)
    assert untranslate(tmp / "root", host, bindings) == guestpath_model.to_guest(str(tmp / "root"), host,
                                                                                  bindings)


STAT_PROBE_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    struct stat st;
    int follow, rc;
    if (argc != 5)
        return 2;
    follow = strcmp(argv[3], "follow") == 0;
    if (strcmp(argv[2], "dirfd") == 0) { /* relative to a directory fd, cwd elsewhere */
        int fd = open(argv[1], O_RDONLY | O_DIRECTORY);
        if (fd < 0 || chdir("/") != 0)
            return 2;
        rc = fstatat(fd, argv[4], &st, follow ? 0 : AT_SYMLINK_NOFOLLOW);
    } else {
        if (chdir(argv[1]) != 0)
            return 2;
        rc = follow ? stat(argv[4], &st) : lstat(argv[4], &st);
    }
    if (rc != 0)
        return 1;
    if (strcmp(argv[2], "cwd") == 0) { /* again: the directory now comes from the library's cache */
        struct stat again;
        if ((follow ? stat(argv[4], &again) : lstat(argv[4], &again)) != 0 || again.st_ino != st.st_ino)
            return 3;
    }
    printf("%lu\n", (unsigned long)st.st_ino);
    return 0;
}
"""


@pytest.fixture(scope="module")
def stat_probe(tmp_path_factory) -> Path:
    """A host program that chdirs and stats, with no exec (an exec would look for it in the rootfs)."""
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed; it builds the stat probe")
    out = tmp_path_factory.mktemp("probe")
    (out / "probe.c").write_text(STAT_PROBE_C)
    subprocess.run([gcc, "-O2", "-o", str(out / "probe"), str(out / "probe.c")], check=True)
    return out / "probe"


def inode_via_library(probe: Path, root: Path, bindings, cwd: str, path: str, *, follow: bool, how: str):
    """The inode the probe finds for `path` from the guest directory `cwd` (the cwd after chdir, or a
    directory fd) through the library's wrappers; None when it fails."""
    from hpcbox_engine_preload import preload_library_path

    env = {"LD_PRELOAD": str(preload_library_path()), "HPCBOX_PRELOAD_ROOT": str(root),
           "HPCBOX_PRELOAD_BINDS": "\n".join(f"{g}={h}" for g, h in bindings)}
    done = subprocess.run([str(probe), cwd, how, "follow" if follow else "nofollow", path], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), (done.returncode, done.stderr)  # 3: the second lookup differed
    return int(done.stdout) if done.returncode == 0 else None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=tree, bound=st.lists(st.tuples(st.sampled_from(["/a", "/b/c"]), tree), max_size=1),
       data=st.data(), follow=st.booleans(), how=st.sampled_from(["cwd", "dirfd"]))
def test_a_program_under_the_library_finds_the_models_file(guestpath_model, stat_probe, *, items, bound, data,
                                                           follow, how):
    """The wrapper stack (chdir, the cwd mapped back, a directory fd mapped back, relative and plain-name
    paths, follow or not) in a real process reaches the file the model names."""
    tmp = Path(tempfile.mkdtemp(prefix="preload-live-"))
    try:
        root = tmp / "root"
        guestpath_model.build_tree(root, items)
        bindings = []
        for i, (guest, host_items) in enumerate(bound):
            guestpath_model.build_tree(tmp / f"host{i}", host_items)
            bindings.append((guest, str(tmp / f"host{i}")))
        cwd = data.draw(st.sampled_from(guestpath_model.cwd_candidates(root, bindings)), label="cwd")
        parts = data.draw(st.lists(component.filter(bool), min_size=1, max_size=5), label="parts")
        path = data.draw(st.sampled_from(["", "/"]), label="lead") + "/".join(parts)
        want = outcome(guestpath_model.to_host, str(root), path, cwd=cwd, bindings=bindings, follow=follow)
        expected = None
        if want[0] == "ok" and os.path.lexists(want[1]):
            expected = os.stat(want[1]).st_ino if follow else os.lstat(want[1]).st_ino
        got = inode_via_library(stat_probe, root, bindings, cwd, path, follow=follow, how=how)
        assert got == expected, f"{path!r} from {cwd!r} ({how}, follow={follow}): library {got}, model {want}"
    finally:
        shutil.rmtree(tmp)
