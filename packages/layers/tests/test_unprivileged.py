"""The documented fixes of an unprivileged extraction, and the report."""

import io
import os
import shutil
import stat
import tarfile

import pytest
from layers_testkit import Entry, dir_, file, hardlink, symlink, tar_bytes

from hpcbox_layers import apply_layers


def blob(entries):
    return io.BytesIO(tar_bytes(entries))


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_devices_and_fifos_are_skipped_and_reported(tmp_path):
    entries = [
        dir_("dev"),
        Entry("chr", "dev/null", mode=0o666),
        Entry("fifo", "dev/initctl", mode=0o600),
        hardlink("dev/null2", "dev/null"),
        file("dev/keep", b"x"),
    ]
    lower = [file("dev/initctl", b"a lower file that the fifo replaces")]
    report = apply_layers(tmp_path / "t", [blob(lower), blob(entries)])
    assert sorted(report.skipped_devices) == ["dev/initctl", "dev/null", "dev/null2"]
    assert sorted(os.listdir(tmp_path / "t" / "dev")) == ["keep"]
    assert report.entries == 3  # lower file, dev/, dev/keep


def test_unreadable_modes_are_fixed_so_the_user_can_delete_the_tree(tmp_path):
    entries = [
        dir_("locked", 0o000),
        dir_("locked/inner", 0o500),
        file("locked/inner/f", b"secret", 0o000),
        dir_("ro", 0o555),
        file("ro/g", b"", 0o444),
        file("plain", b"", 0o644),
        dir_("private", 0o700),
    ]
    target = tmp_path / "t"
    report = apply_layers(target, [blob(entries)])
    assert mode(target / "locked") == 0o700
    assert mode(target / "locked/inner") == 0o700
    assert mode(target / "locked/inner/f") == 0o600
    assert mode(target / "ro") == 0o755
    assert mode(target / "ro/g") == 0o644
    assert mode(target / "plain") == 0o644
    assert report.permissions_fixed == 5
    assert (target / "locked/inner/f").read_bytes() == b"secret"
    shutil.rmtree(target)
    assert not target.exists()


def test_setuid_setgid_and_file_sticky_bits_are_stripped(tmp_path):
    entries = [
        file("su", b"", 0o4755),
        file("sg", b"", 0o2755),
        file("sticky", b"", 0o1644),
        dir_("mail", 0o2775),
        dir_("tmp", 0o1777),
    ]
    target = tmp_path / "t"
    report = apply_layers(target, [blob(entries)])
    assert mode(target / "su") == 0o755
    assert mode(target / "sg") == 0o755
    assert mode(target / "sticky") == 0o644
    assert mode(target / "mail") == 0o775
    assert mode(target / "tmp") == 0o1777  # sticky directories stay sticky
    assert sorted(report.setid_stripped) == ["mail", "sg", "su"]


def test_mtimes_are_kept_and_directories_get_theirs_after_their_children(tmp_path):
    lower = [dir_("d", mtime=1_111_111_111), file("d/old", b"", mtime=1_222_222_222)]
    lower.append(symlink("s", "x", 1_333_333_333))
    # The upper layer writes into d (which would bump its mtime) and whiteouts in it.
    upper = [file("d/new", b"n", mtime=1_444_444_444), Entry("whiteout", "d/.wh.old")]
    target = tmp_path / "t"
    apply_layers(target, [blob(lower), blob(upper)])
    assert os.lstat(target / "d").st_mtime == 1_111_111_111
    assert os.lstat(target / "d/new").st_mtime == 1_444_444_444
    assert os.lstat(target / "s").st_mtime == 1_333_333_333
    assert sorted(os.listdir(target / "d")) == ["new"]


def test_root_entry_sets_the_target_mode_and_mtime(tmp_path):
    target = tmp_path / "t"
    apply_layers(target, [blob([dir_("./", 0o750, mtime=1_500_000_000), file("./a", b"")])])
    assert mode(target) == 0o750
    assert os.stat(target).st_mtime == 1_500_000_000


def test_xattrs_are_ignored_and_counted(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("ping")
        info.size = 2
        info.pax_headers = {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02", "comment": "x"}
        tf.addfile(info, io.BytesIO(b"hi"))
        info = tarfile.TarInfo("plain")
        info.pax_headers = {"comment": "no xattrs"}
        tf.addfile(info, io.BytesIO(b""))
    buf.seek(0)
    report = apply_layers(tmp_path / "t", [buf])
    assert report.xattrs_ignored == 1
    assert (tmp_path / "t/ping").read_bytes() == b"hi"


def test_report_and_progress(tmp_path):
    calls = []
    layers = [
        blob([dir_("a"), file("a/f", b"12345"), symlink("a/s", "f"), hardlink("a/h", "a/f")]),
        blob([Entry("whiteout", "a/.wh.f"), Entry("opaque", "a/.wh..wh..opq"), file("a/g", b"xy", 0o000)]),
    ]
    report = apply_layers(
        tmp_path / "t", layers, on_progress=lambda done, total, r: calls.append((done, total, r.entries))
    )
    assert calls == [(1, 2, 4), (2, 2, 5)]
    assert report.layers == 2
    assert report.entries == 5
    assert report.bytes_written == 7
    assert report.whiteouts == 2
    assert report.permissions_fixed == 1
    assert sorted(os.listdir(tmp_path / "t/a")) == ["g"]


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o027, 0o077])
def test_file_modes_do_not_depend_on_the_umask(tmp_path, umask):
    """Files are created with their mode when the umask leaves it whole, else fixed afterwards."""
    modes = [0o644, 0o755, 0o666, 0o777, 0o600, 0o640, 0o000, 0o4755, 0o1644, 0o444]
    entries = [file(f"f{m:o}", b"data", m) for m in modes] + [hardlink("link", "f644")]
    old = os.umask(umask)
    try:
        report = apply_layers(tmp_path / "t", [blob(entries)])
    finally:
        os.umask(old)
    for m in modes:
        assert mode(tmp_path / "t" / f"f{m:o}") == (m & 0o777) | 0o600, oct(m)
        assert (tmp_path / "t" / f"f{m:o}").read_bytes() == b"data"
    assert report.setid_stripped == ["f4755"]
    assert report.permissions_fixed == 2  # 0o000 and 0o444
