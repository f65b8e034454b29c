"""guest_bindings and resolve_in_root."""

from __future__ import annotations

import os

import pytest
from hpcbox_oci_bundle import Binding, BundleError, guest_bindings, parse_bundle, resolve_in_root


def _spec(tmp_path, mounts):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    return parse_bundle({"process": {"args": ["x"]}, "root": {"path": "rootfs"}, "mounts": mounts},
                        bundle_dir=str(tmp_path))


def test_kernel_filesystems_come_first_then_binds_in_config_order(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    spec = _spec(tmp_path, [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"},
        {"destination": "/work", "type": "bind", "source": str(tmp_path / "a"), "options": ["rbind", "ro"]},
        {"destination": "/etc/passwd", "type": "bind", "source": "/etc/passwd"},
    ])
    assert guest_bindings(spec) == [
        Binding("/proc", "/proc", False), Binding("/sys", "/sys", False), Binding("/dev", "/dev", False),
        Binding("/work", str(tmp_path / "a"), True), Binding("/etc/passwd", "/etc/passwd", False),
    ]


def test_a_later_bind_of_the_same_path_wins_and_moves_last(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    spec = _spec(tmp_path, [
        {"destination": "/x", "type": "bind", "source": str(tmp_path / "a")},
        {"destination": "/y", "type": "bind", "source": str(tmp_path / "a")},
        {"destination": "/x/", "type": "bind", "source": str(tmp_path / "b"), "options": ["ro"]},
    ])
    assert guest_bindings(spec)[3:] == [Binding("/y", str(tmp_path / "a"), False),
                                        Binding("/x", str(tmp_path / "b"), True)]


def test_a_bind_over_proc_replaces_the_hosts(tmp_path):
    spec = _spec(tmp_path, [{"destination": "/proc", "type": "bind", "source": str(tmp_path)}])
    assert guest_bindings(spec)[-1] == Binding("/proc", str(tmp_path), False)
    assert [b.guest for b in guest_bindings(spec)] == ["/sys", "/dev", "/proc"]


def test_other_filesystems_need_a_namespace_and_the_error_says_what_to_do(tmp_path):
    spec = _spec(tmp_path, [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}])
    with pytest.raises(BundleError, match=r"the tmpfs mount at /tmp needs a mount namespace.*-v DIR:/tmp"):
        guest_bindings(spec)


def test_resolve_in_root_follows_links_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")
    os.symlink("/usr", root / "abs")
    os.symlink("../../../../..", root / "usr" / "up")
    os.symlink("loop", root / "loop")
    assert resolve_in_root(str(root), "/lib/x") == str(root / "usr" / "lib" / "x")
    assert resolve_in_root(str(root), "/abs/lib") == str(root / "usr" / "lib")
    assert resolve_in_root(str(root), "/usr/up/etc") == str(root / "etc")
    assert resolve_in_root(str(root), "/../../x/./y") == str(root / "x" / "y")
    with pytest.raises(BundleError, match="too many symlinks resolving /loop"):
        resolve_in_root(str(root), "/loop")


def test_place_bindings_lands_where_mounts_land(tmp_path):
    from hpcbox_oci_bundle import place_bindings

    root = tmp_path / "rootfs"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    os.symlink("/run", str(root / "var" / "run"))  # Debian's /var/run -> /run
    host_dir = tmp_path / "vol"
    host_dir.mkdir()
    host_file = tmp_path / "conf"
    host_file.write_text("x")
    placed = place_bindings(str(root), [
        Binding("/proc", "/proc", False),
        Binding("/var/run/x", str(host_dir), False),        # followed through the rootfs's link
        Binding("/mnt/deep/data", str(host_dir), True),     # parents missing in the rootfs
        Binding("/etc/app.conf", str(host_file), False),    # a file: an empty file as mount point
        Binding("/run/x", str(host_file), False),           # same place as the second: on top, last
    ])
    assert placed == [
        Binding("/proc", "/proc", False),
        Binding("/mnt/deep/data", str(host_dir), True),
        Binding("/etc/app.conf", str(host_file), False),
        Binding("/run/x", str(host_file), False),
    ]
    assert (root / "mnt" / "deep" / "data").is_dir()
    assert (root / "etc" / "app.conf").is_file()
    assert (root / "run" / "x").is_dir()  # made for the first binding there (a directory)
    assert (root / "proc").is_dir()  # the mount point of the host's /proc, not resolved


def test_place_bindings_keeps_a_path_it_cannot_resolve(tmp_path):
    from hpcbox_oci_bundle import place_bindings

    root = tmp_path / "rootfs"
    root.mkdir()
    os.symlink("loop2", str(root / "loop1"))
    os.symlink("loop1", str(root / "loop2"))
    os.symlink("/", str(root / "top"))
    vol = tmp_path / "vol"
    vol.mkdir()
    placed = place_bindings(str(root), [Binding("/loop1/x", str(vol), False),
                                        Binding("/top", str(vol), False)])
    assert [b.guest for b in placed] == ["/loop1/x", "/top"]
