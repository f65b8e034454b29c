"""translate/untranslate/resolve through cffi: examples, errors and input validation."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hpcbox_engine_ptrace import resolve, translate, untranslate


@pytest.fixture
def tree(tmp_path: Path):
    """A merged-usr Debian-like rootfs and a host directory outside it to bind."""
    root = tmp_path / "root"
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/bin").mkdir()
    (root / "etc").mkdir()
    (root / "usr/lib/x86_64-linux-gnu/libc.so.6").write_text("elf")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "lib").symlink_to("usr/lib")
    (root / "bin").symlink_to("/usr/bin")
    (root / "escape").symlink_to("../../../../../../etc")
    (root / "loop").symlink_to("loop")
    host = tmp_path / "host data"
    (host / "sub").mkdir(parents=True)
    (host / "sub/back").symlink_to("/etc")
    return root, host


def test_symlinked_lib_resolves_inside_the_root(tree):
    root, _ = tree
    got = translate(root, "/lib/x86_64-linux-gnu/libc.so.6")
    assert got == str(root / "usr/lib/x86_64-linux-gnu/libc.so.6")


def test_absolute_symlink_is_a_guest_path(tree):
    root, _ = tree
    assert translate(root, "/bin") == str(root / "usr/bin")
    assert translate(root, "/bin", follow=False) == str(root / "bin")
    # A trailing "/" follows the final link even with lstat semantics, as the kernel does.
    assert translate(root, "/bin/", follow=False) == str(root / "usr/bin")


def test_dotdot_and_links_above_the_root_stay_inside(tree):
    root, _ = tree
    assert translate(root, "/../../..") == str(root)
    assert translate(root, "/escape/passwd") == str(root / "etc/passwd")
    assert translate(root, "../../etc//./passwd", cwd="/usr/bin") == str(root / "etc/passwd")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/nope/x", errno.ENOENT),
        ("/etc/passwd/x", errno.ENOTDIR),
        ("/etc/passwd/", errno.ENOTDIR),
        ("/loop", errno.ELOOP),
        ("/loop/x", errno.ELOOP),
        ("", errno.ENOENT),
    ],
)
def test_errors_are_oserrors_with_the_kernels_errno(tree, path, code):
    root, _ = tree
    with pytest.raises(OSError) as info:
        translate(root, path)
    assert info.value.errno == code


def test_missing_final_component_is_where_it_would_be_created(tree):
    root, _ = tree
    assert translate(root, "/etc/new.conf") == str(root / "etc/new.conf")
    assert translate(root, "/etc/newdir/") == str(root / "etc/newdir") + "/"


def test_bindings_substitute_the_longest_prefix(tree, tmp_path):
    root, host = tree
    other = tmp_path / "other"
    other.mkdir()
    bindings = [("/mnt/data", host), ("/mnt/data/sub/deeper", other)]
    assert translate(root, "/mnt/data/sub", bindings=bindings) == str(host / "sub")
    assert translate(root, "/mnt/data/sub/deeper/f", bindings=bindings) == str(other / "f")
    # An absolute link inside the binding's host tree is a guest path.
    assert translate(root, "/mnt/data/sub/back/passwd", bindings=bindings) == str(root / "etc/passwd")


def test_single_file_binding(tree, tmp_path):
    root, _ = tree
    passwd = tmp_path / "passwd"
    passwd.write_text("me:x:1000:1000::/home/me:/bin/sh\n")
    assert translate(root, "/etc/passwd", bindings=[("/etc/passwd", passwd)]) == str(passwd)


def test_resolve_gives_the_guest_realpath(tree):
    root, _ = tree
    assert resolve(root, "/lib/../bin/") == "/usr/bin"
    assert resolve(root, "lib", cwd="/", follow=False) == "/lib"


def test_untranslate(tree):
    root, host = tree
    bindings = [("/mnt/data", host)]
    assert untranslate(root, str(root / "usr/lib"), bindings) == "/usr/lib"
    assert untranslate(root, str(root), bindings) == "/"
    assert untranslate(root, str(host / "sub"), bindings) == "/mnt/data/sub"
    assert untranslate(root, "/proc/1/status", bindings) == "/proc/1/status"
    with pytest.raises(ValueError, match="outside the container"):
        untranslate(root, "/proc/1/status", bindings, strict=True)


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"root": "relative/root"}, ValueError, "root must be an absolute path"),
        ({"root": 42}, TypeError, "root must be a str"),
        ({"guest_path": "/a\0b"}, ValueError, "NUL"),
        ({"guest_path": "/" + "a" * 5000}, ValueError, "PATH_MAX"),
        ({"cwd": "usr"}, ValueError, "cwd must be an absolute path"),
        ({"bindings": [("/mnt",)]}, ValueError, "must be a .guest, host. pair"),
        ({"bindings": [("mnt", "/tmp")]}, ValueError, "binding guest path must be an absolute"),
        ({"bindings": [("/a/..", "/tmp")]}, ValueError, "cannot be at the guest root"),
    ],
)
def test_bad_input_is_refused_before_c(tree, kwargs, exc, message):
    root, _ = tree
    args = {"root": root, "guest_path": "/etc", **kwargs}
    with pytest.raises(exc, match=message):
        translate(**args)


def test_missing_root_and_missing_binding_host(tree, tmp_path):
    root, _ = tree
    with pytest.raises(FileNotFoundError):
        translate(tmp_path / "absent", "/")
    with pytest.raises(NotADirectoryError):
        translate(root / "etc/passwd", "/")
    with pytest.raises(FileNotFoundError):
        translate(root, "/", bindings=[("/mnt", tmp_path / "absent")])


def test_pathlike_inputs(tree):
    root, _ = tree
    assert translate(root, Path("/etc/passwd"), cwd=Path("/")) == os.path.join(root, "etc/passwd")
