"""Hostile archives: nothing outside the target may be created, changed or deleted, whatever the entries."""

import io
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layers_testkit import (
    Entry,
    dir_,
    file,
    hardlink,
    opaque,
    sentinel_snapshot,
    symlink,
    tar_bytes,
    whiteout,
)

from hpcbox_layers import CorruptLayerError, LayerError, UnsafeEntryError, apply_layers

OUT = "{OUT}"  # replaced by the absolute path of the sentinel directory beside the target


def make_base(tmp):
    base = Path(tmp)
    outside = base / "outside"
    (outside / "d").mkdir(parents=True)
    (outside / "secret").write_bytes(b"keep me")
    (outside / "d" / "f").write_bytes(b"and me")
    os.symlink("secret", outside / "link")
    os.utime(outside / "d", ns=(10**18, 10**18))
    return base, outside


def resolve(entries, outside):
    out = []
    for e in entries:
        name, target = e.name.replace(OUT, str(outside)), e.target.replace(OUT, str(outside))
        out.append(Entry(e.kind, name, e.data, e.mode, target, e.mtime))
    return out


pool = st.sampled_from(
    [
        # plant symlinks that lead outside, by relative, absolute and `..` targets
        symlink("s", "../outside"),
        symlink("s", OUT),
        symlink("l", ".."),
        symlink("d/s", "../../outside/d"),
        symlink("s/d", "x"),
        # and write through them: files, dirs, links, whiteouts, opaque markers
        file("s/secret", b"pwned"),
        file("s/new", b"pwned"),
        file("s/d/f", b"pwned"),
        file("l/outside/secret", b"pwned"),
        file("d/s/f", b"pwned"),
        dir_("s/newdir"),
        dir_("s/d", mode=0o777),
        symlink("s/link", "/etc/passwd"),
        hardlink("s/hl", "a"),
        whiteout("s/secret"),
        whiteout("s/d"),
        whiteout("l/outside"),
        whiteout("d/s/f"),
        opaque("s"),
        opaque("s/d"),
        opaque("l/outside"),
        # hardlinks pointing outside or through symlinks
        hardlink("h", "../outside/secret"),
        hardlink("h", OUT + "/secret"),
        hardlink("h", "s/secret"),
        hardlink("h", "l/outside/secret"),
        hardlink("h", "s/link"),
        # `..` and absolute names
        file("../outside/secret", b"pwned"),
        file("a/../../outside/new", b"pwned"),
        file(OUT + "/new", b"pwned"),
        dir_("../outside/d", mode=0o777),
        whiteout("../outside/secret"),
        Entry("whiteout", "d/.wh..."),
        # plain entries, so that some stacks are valid and overwrite the links above
        file("a", b"fine"),
        dir_("d"),
        dir_("s"),
        file("s", b"not a link any more"),
        opaque("d"),
        whiteout("s"),
    ]
)
stacks = st.lists(st.lists(pool, min_size=1, max_size=6), min_size=1, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack=stacks, as_paths=st.booleans())
def test_hostile_stacks_never_touch_the_outside(stack, as_paths):
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as blob_dir:
        base, outside = make_base(tmp)
        before = sentinel_snapshot(str(outside))
        target = base / "target"
        blobs = [io.BytesIO(tar_bytes(resolve(layer, outside))) for layer in stack]
        if as_paths:  # (layers given as paths are decompressed one layer ahead, in a thread)
            paths = [Path(blob_dir) / f"layer{i}.tar" for i in range(len(blobs))]
            for path, blob in zip(paths, blobs):
                path.write_bytes(blob.getvalue())
            blobs = paths
        try:
            apply_layers(target, blobs)
        except (UnsafeEntryError, CorruptLayerError):
            pass
        assert sentinel_snapshot(str(outside)) == before
        assert sorted(os.listdir(base)) == ["outside", "target"]
        assert not os.path.exists("/etc/passwd") or b"pwned" not in Path("/etc/passwd").read_bytes()


@pytest.mark.parametrize(
    ("layers", "entry", "reason"),
    [
        ([[file("../x")]], "../x", "'..'"),
        ([[file("a/../../x")]], "a/../../x", "'..'"),
        ([[file("/etc/x")]], "/etc/x", "absolute"),
        ([[symlink("s", "../outside"), file("s/secret")]], "s/secret", "symlink"),
        ([[symlink("s", "../outside")], [file("s/secret")]], "s/secret", "symlink"),
        ([[symlink("s", OUT)], [dir_("s/x")]], "s/x", "symlink"),
        ([[hardlink("h", "../outside/secret")]], "h", "'..'"),
        ([[hardlink("h", OUT + "/secret")]], "h", "absolute"),
        ([[symlink("s", "../outside")], [hardlink("h", "s/secret")]], "h", "symlink"),
        ([[symlink("s", "../outside")], [whiteout("s/secret")]], "s/.wh.secret", "symlink"),
        ([[symlink("s", "../outside")], [opaque("s")]], "s/.wh..wh..opq", "symlink"),
        ([[symlink("l", "..")], [whiteout("l/outside/secret")]], "l/outside/.wh.secret", "symlink"),
        ([[Entry("whiteout", ".wh...")]], ".wh...", "'..'"),
        ([[Entry("whiteout", "d/.wh..")]], "d/.wh..", "'.'"),
    ],
)
def test_unsafe_entries_are_refused_with_entry_and_layer(tmp_path, layers, entry, reason):
    base, outside = make_base(tmp_path)
    before = sentinel_snapshot(str(outside))
    blobs = [io.BytesIO(tar_bytes(resolve(layer, outside))) for layer in layers]
    with pytest.raises(UnsafeEntryError) as info:
        apply_layers(base / "target", blobs)
    err = info.value
    assert err.entry == entry.replace(OUT, str(outside))
    assert err.layer_index == len(layers) - 1
    assert reason in str(err) and f"layer {err.layer_index}" in str(err)
    assert isinstance(err, LayerError)
    assert sentinel_snapshot(str(outside)) == before


def test_symlinks_are_kept_verbatim_and_never_followed(tmp_path):
    base, outside = make_base(tmp_path)
    target = base / "target"
    abs_target = str(outside / "secret")
    layer = [symlink("abs", abs_target), symlink("rel", "../outside/secret"), symlink("up", "../")]
    # A later layer replaces the links themselves: only the links go, never what they point to.
    upper = [file("abs", b"new"), dir_("rel"), whiteout("up")]
    apply_layers(target, [io.BytesIO(tar_bytes(layer))])
    assert os.readlink(target / "abs") == str(outside / "secret")
    assert os.readlink(target / "rel") == "../outside/secret"
    assert os.readlink(target / "up") == "../"
    apply_layers(target, [io.BytesIO(tar_bytes(upper))])
    assert (target / "abs").read_bytes() == b"new" and not (target / "abs").is_symlink()
    assert (target / "rel").is_dir() and not (target / "rel").is_symlink()
    assert not os.path.lexists(target / "up")
    assert (outside / "secret").read_bytes() == b"keep me"


def test_very_deep_names_are_handled_without_recursion(tmp_path):
    deep = "/".join(["d"] * 1500)
    target = tmp_path / "t"
    try:
        try:
            apply_layers(target, [io.BytesIO(tar_bytes([file(deep + "/f", b"x")]))])
        except LayerError as e:  # the fd or path limits of the system may be reached first; that is fine
            assert "layer 0" in str(e)
        else:
            assert (target / deep / "f").read_bytes() == b"x"
            apply_layers(target, [io.BytesIO(tar_bytes([whiteout("d")]))])
            assert os.listdir(target) == []
    finally:
        # shutil.rmtree (and so pytest's clean-up) recurses per level: never leave this tree behind
        subprocess.run(["rm", "-rf", str(target)], check=True)
