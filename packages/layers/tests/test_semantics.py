"""The OCI layer rules, one readable example each (the model test covers their combinations)."""

import io
import os
import tarfile

import pytest
from layers_testkit import Entry, dir_, file, hardlink, opaque, symlink, tar_bytes, whiteout

from hpcbox_layers import CorruptLayerError, apply_layers


def apply(tmp_path, *layers):
    target = tmp_path / "t"
    apply_layers(target, [io.BytesIO(tar_bytes(layer)) for layer in layers])
    return target


def tree(target):
    out = []
    for dirpath, dirnames, filenames in os.walk(target):
        for name in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), target))
    return sorted(out)


LOWER = [dir_("d"), file("d/a", b"a"), dir_("d/sub"), file("d/sub/b", b"b"), file("keep", b"k")]


def test_whiteout_removes_lower_file_and_directory_tree(tmp_path):
    target = apply(tmp_path, LOWER, [whiteout("d/a"), whiteout("d/sub"), whiteout("absent")])
    assert tree(target) == ["d", "keep"]


@pytest.mark.parametrize("where", [0, 1, 2])
def test_opaque_marker_empties_lower_directory_wherever_it_sits(tmp_path, where):
    own = [file("d/new", b"n"), dir_("d/sub")]  # d/sub is restated: it stays, but its lower child goes
    layer = list(own)
    layer.insert(where, opaque("d"))
    target = apply(tmp_path, LOWER, layer)
    assert tree(target) == ["d", "d/new", "d/sub", "keep"]


def test_whiteout_does_not_hide_entries_of_its_own_layer(tmp_path):
    target = apply(tmp_path, LOWER, [file("d/a", b"new a"), whiteout("d/a")])
    assert (target / "d/a").read_bytes() == b"new a"


def test_directory_over_directory_keeps_children_and_takes_new_attributes(tmp_path):
    target = apply(tmp_path, LOWER, [dir_("d", 0o750, mtime=1_234_567_890)])
    assert tree(target) == ["d", "d/a", "d/sub", "d/sub/b", "keep"]
    assert os.stat(target / "d").st_mode & 0o777 == 0o750
    assert os.stat(target / "d").st_mtime == 1_234_567_890


def test_replacements(tmp_path):
    upper = [file("d", b"file over dir"), dir_("keep"), symlink("x", "/abs/target")]
    target = apply(tmp_path, [*LOWER, dir_("x"), file("x/y")], upper)
    assert (target / "d").read_bytes() == b"file over dir"
    assert (target / "keep").is_dir()
    assert os.readlink(target / "x") == "/abs/target"
    assert tree(target) == ["d", "keep", "x"]


def test_hardlinks_within_and_across_layers_share_the_inode(tmp_path):
    target = apply(tmp_path, LOWER, [hardlink("d/a2", "d/a"), hardlink("./k2", "./keep")])
    assert os.stat(target / "d/a2").st_ino == os.stat(target / "d/a").st_ino
    assert os.stat(target / "k2").st_ino == os.stat(target / "keep").st_ino
    assert os.stat(target / "keep").st_nlink == 2


def test_replacing_a_hardlinked_path_leaves_the_other_name_intact(tmp_path):
    target = apply(tmp_path, [file("a", b"old"), hardlink("b", "a")], [file("a", b"new")])
    assert (target / "a").read_bytes() == b"new"
    assert (target / "b").read_bytes() == b"old"


def test_duplicates_last_wins(tmp_path):
    layer = [file("f", b"1"), file("f", b"2"), dir_("g"), file("g", b"3"), symlink("f", "g")]
    target = apply(tmp_path, layer)
    assert os.readlink(target / "f") == "g"
    assert (target / "g").read_bytes() == b"3"


def test_missing_parents_are_made_and_files_in_the_way_replaced(tmp_path):
    target = apply(tmp_path, [file("f", b"")], [file("f/deep/x", b"x"), file("./a//b/./c", b"c")])
    assert tree(target) == ["a", "a/b", "a/b/c", "f", "f/deep", "f/deep/x"]
    assert os.stat(target / "f").st_mode & 0o777 == 0o755


def test_aufs_metadata_is_ignored_and_whiteouts_never_appear(tmp_path):
    layer = [Entry("file", ".wh..wh.plnk/12.34"), Entry("dir", ".wh..wh.aufs"), whiteout("keep")]
    target = apply(tmp_path, LOWER, layer)
    assert tree(target) == ["d", "d/a", "d/sub", "d/sub/b"]


def test_hardlink_to_a_missing_file_is_corrupt(tmp_path):
    with pytest.raises(CorruptLayerError, match="layer 0: hardlink 'h' points to 'nope'"):
        apply(tmp_path, [hardlink("h", "nope")])
    with pytest.raises(CorruptLayerError, match="directory"):
        apply(tmp_path, [dir_("d"), hardlink("h", "d")])


def test_volume_labels_are_skipped_and_unknown_types_read_as_files(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        label = tarfile.TarInfo("backup of 2024")
        label.type = b"V"
        tf.addfile(label)
        odd = tarfile.TarInfo("odd")
        odd.type, odd.size = b"Q", 3
        tf.addfile(odd, io.BytesIO(b"abc"))
    buf.seek(0)
    apply_layers(tmp_path / "t", [buf])
    assert tree(tmp_path / "t") == ["odd"]
    assert (tmp_path / "t/odd").read_bytes() == b"abc"
