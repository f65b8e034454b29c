"""The built library itself: glibc symbol versions, exports, and its behaviour inside host programs."""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from hpcbox_engine_preload import musl_library_path, preload_library_path

OLDEST_GLIBC = (2, 31)  # Debian 11 bullseye


def glibc_versions(library: Path):
    """Every GLIBC_x.y[.z] version name the library's dynamic string table holds (its needs)."""
    found = re.findall(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?", library.read_bytes())
    return sorted({tuple(int(p) for p in v if p) for v in found})


PT_LOAD, PT_DYNAMIC, PT_GNU_RELRO, PF_W = 1, 2, 0x6474E552, 2
DT_FLAGS, DT_BIND_NOW, DT_FLAGS_1, DF_BIND_NOW, DF_1_NOW = 30, 24, 0x6FFFFFFB, 8, 1


def program_headers(library: Path):
    """(type, flags, offset, vaddr, filesz, memsz) of each program header of a 64-bit ELF file."""
    data = library.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, f"{library}: not a 64-bit ELF file"
    order = "<" if data[5] == 1 else ">"
    phoff = struct.unpack_from(order + "Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
    for i in range(phnum):
        kind, flags, offset, vaddr, _, filesz, memsz, _ = struct.unpack_from(order + "IIQQQQQQ", data,
                                                                             phoff + i * phentsize)
        yield kind, flags, offset, vaddr, filesz, memsz


def dynamic_entries(library: Path) -> dict:
    data = library.read_bytes()
    order = "<" if data[5] == 1 else ">"
    entries = {}
    for kind, _, offset, _, filesz, _ in program_headers(library):
        if kind == PT_DYNAMIC:
            for at in range(offset, offset + filesz, 16):
                tag, value = struct.unpack_from(order + "qQ", data, at)
                entries.setdefault(tag, value)
    return entries


def built_libraries():
    return [path for path in (preload_library_path(), musl_library_path()) if path is not None]


def test_the_data_segment_ends_in_the_pages_of_the_file():
    # .bss within the last page of the file's data: the loader maps the library with two mmaps, no
    # third (anonymous) one for .bss, in every process. Fails when a large static lands in .bss
    # (mark it HP_DATA). 4 KiB: the smallest page of the machines served (64 KiB ones are easier).
    page = 4096
    for library in built_libraries():
        writable = [(vaddr, filesz, memsz)
                    for kind, flags, _, vaddr, filesz, memsz in program_headers(library)
                    if kind == PT_LOAD and flags & PF_W]
        assert len(writable) == 1, (library, writable)
        vaddr, filesz, memsz = writable[0]
        file_pages_end = (vaddr + filesz + page - 1) // page * page
        assert vaddr + memsz <= file_pages_end, (
            f"{library.name}: .bss spills {vaddr + memsz - file_pages_end} bytes past the file's last page")


def test_the_library_is_linked_with_full_relro():
    # every symbol bound at load, then the GOT read-only (no lazy binding through a writable GOT)
    for library in built_libraries():
        assert any(kind == PT_GNU_RELRO for kind, *_ in program_headers(library)), library
        dynamic = dynamic_entries(library)
        assert (DT_BIND_NOW in dynamic or dynamic.get(DT_FLAGS, 0) & DF_BIND_NOW
                or dynamic.get(DT_FLAGS_1, 0) & DF_1_NOW), library


def test_no_glibc_symbol_version_newer_than_debian_11():
    versions = glibc_versions(preload_library_path())
    assert versions, "the library references no versioned glibc symbol: not linked against glibc?"
    assert max(versions) <= OLDEST_GLIBC, f"needs glibc {max(versions)}: newer than Debian 11's 2.31"


def test_objdump_agrees_on_the_versions():
    objdump = subprocess.run(["objdump", "-T", str(preload_library_path())], capture_output=True, text=True,
                             check=False)
    if objdump.returncode != 0:
        pytest.skip("objdump (binutils) is not installed")
    needed = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"\(GLIBC_([\d.]+)\)", objdump.stdout)}
    assert needed and max(needed) <= OLDEST_GLIBC, sorted(needed)
    exported = {line.split()[-1] for line in objdump.stdout.splitlines() if " DF .text" in line}
    # the families the issue names, old glibc's stat symbols included; nothing of the core leaks out
    assert {"open", "openat64", "__open_2", "stat", "__xstat", "__fxstatat64", "statx", "access",
            "execve", "execvp", "posix_spawn", "system", "readlink", "realpath", "getcwd", "chdir",
            "opendir", "scandir", "glob", "nftw", "mkstemp", "bind", "connect", "dlopen", "renameat2",
            "utimensat", "lsetxattr", "symlinkat", "linkat", "truncate", "fopen"} <= exported
    assert not any(name.startswith(("gp_", "hp_")) for name in exported)


def test_only_libc_is_needed_and_dlsym_is_weak():
    """No libdl.so.2 to map in every process: dlsym@GLIBC_2.2.5 is weak (in libc since glibc 2.34;
    before, csrc/next.c finds the next definitions itself, which the Debian 11 image tests exercise)."""
    objdump = subprocess.run(["objdump", "-p", "-T", str(preload_library_path())], capture_output=True,
                             text=True, check=False)
    if objdump.returncode != 0:
        pytest.skip("objdump (binutils) is not installed")
    needed = re.findall(r"NEEDED\s+(\S+)", objdump.stdout)
    assert needed == ["libc.so.6"], needed
    [dlsym] = [line for line in objdump.stdout.splitlines() if line.endswith(" dlsym")]
    assert " w " in dlsym and "*UND*" in dlsym, dlsym


def test_musl_build_needs_only_musl():
    library = musl_library_path()
    if library is None:
        pytest.skip("built without musl-gcc")
    objdump = subprocess.run(["objdump", "-p", "-T", str(library)], capture_output=True, text=True,
                             check=False)
    if objdump.returncode != 0:
        pytest.skip("objdump (binutils) is not installed")
    # no DT_NEEDED at all: musl's loader resolves the symbols from the libc already loaded, and the
    # build host's libc.so (glibc's linker script there) is not named, so auditwheel can read it
    assert re.findall(r"NEEDED\s+(\S+)", objdump.stdout) == []
    assert "GLIBC_" not in objdump.stdout and " open" in objdump.stdout


def run_with_library(tmp_path, command, **env):
    full = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": str(preload_library_path()), **env}
    return subprocess.run(command, env=full, capture_output=True, text=True, check=False, cwd=tmp_path)


def test_inactive_without_a_rootfs(tmp_path):
    (tmp_path / "f").write_text("host\n")
    proc = run_with_library(tmp_path, ["cat", str(tmp_path / "f")])
    assert proc.stdout == "host\n" and proc.returncode == 0


def test_a_host_program_sees_the_rootfs_and_bindings(tmp_path):
    root, data = tmp_path / "root", tmp_path / "data"
    (root / "etc").mkdir(parents=True)
    (root / "etc/motd").write_text("guest\n")
    (root / "etc/link").symlink_to("/etc/motd")  # absolute: a guest path, not the host's /etc/motd
    data.mkdir()
    (data / "x").write_text("bound\n")
    proc = run_with_library(tmp_path, ["cat", "/etc/link", "/data/x", "/etc/../../../etc/motd"],
                            HPCBOX_PRELOAD_ROOT=str(root), HPCBOX_PRELOAD_BINDS=f"/data={data}")
    assert proc.stdout == "guest\nbound\nguest\n", proc.stderr


def test_proc_environ_does_not_show_the_configuration(tmp_path):
    """/proc/self/environ, the parent's /proc/PID/environ, and what another program (this test)
    reads in /proc/PID/environ list the program's variables, in order and without empty entries,
    but no HPCBOX_PRELOAD_* (as `env` does not)."""
    root = tmp_path / "root"
    root.mkdir()
    env = {"HPCBOX_PRELOAD_ROOT": str(root), "FIRST_OF_MINE": "1",
           "HPCBOX_PRELOAD_LIB": str(preload_library_path()),
           "HPCBOX_PRELOAD_BINDS": "/proc=/proc\n/bin=/bin\n/usr=/usr\n/lib=/lib\n/lib64=/lib64",
           "LAST_OF_MINE": "2"}

    def check(environ: str) -> None:
        entries = environ.split("\0")
        assert entries[-1] == "" and all(entries[:-1]), environ  # NUL-terminated, none empty
        names = [entry.partition("=")[0] for entry in entries[:-1]]
        assert [n for n in names if n.endswith("_OF_MINE")] == ["FIRST_OF_MINE", "LAST_OF_MINE"], environ
        assert "PATH" in names and not [n for n in names if n.startswith("HPCBOX_PRELOAD_")], environ

    script = "cat /proc/self/environ; echo; cat /proc/$$/environ; echo; env | grep -c '^HPCBOX_PRELOAD_'"
    proc = run_with_library(tmp_path, ["sh", "-c", script], **env)
    *environs, count, _ = proc.stdout.split("\n")
    assert count == "0" and len(environs) == 2, (proc.stdout, proc.stderr)
    for environ in environs:
        check(environ)
    full = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": str(preload_library_path()), **env}
    with subprocess.Popen(["sh", "-c", "echo $$; read line"], env=full, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, cwd=tmp_path) as shell:
        pid = shell.stdout.readline().strip()  # written by the program, after the library's start
        check(Path(f"/proc/{pid}/environ").read_bytes().decode())
        shell.communicate("done\n", timeout=60)


def test_read_only_binding_refuses_writes(tmp_path):
    root, ro = tmp_path / "root", tmp_path / "ro"
    root.mkdir()
    ro.mkdir()
    env = {"HPCBOX_PRELOAD_ROOT": str(root), "HPCBOX_PRELOAD_BINDS": f"/ro={ro}", "HPCBOX_PRELOAD_RO": "/ro"}
    proc = run_with_library(tmp_path, ["touch", "/ro/x", "/made"], **env)
    assert "Read-only file system" in proc.stderr and proc.returncode != 0
    assert not (ro / "x").exists() and (root / "made").exists()
    assert os.listdir(ro) == []


def test_users_and_groups_come_from_the_rootfs(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    users = ["root:x:0:0:root:/root:/bin/sh", "alice:x:4242:4343:Alice:/home/a:/bin/sh"]
    (root / "etc/passwd").write_text("".join(u + "\n" for u in users))
    (root / "etc/group").write_text("root:x:0:\nstaff:x:4343:\nextra:x:5000:bob,alice\n")
    env = {"HPCBOX_PRELOAD_ROOT": str(root), "HPCBOX_PRELOAD_UID": "4242", "HPCBOX_PRELOAD_GID": "4343"}
    proc = run_with_library(tmp_path, ["id"], **env)
    assert proc.stdout.strip().startswith("uid=4242(alice) gid=4343(staff)"), proc.stderr
    proc = run_with_library(tmp_path, ["getent", "passwd", "alice", "root"], **env)
    assert proc.stdout.splitlines() == [users[1], users[0]]
    proc = run_with_library(tmp_path, ["getent", "group"], **env)
    assert proc.stdout.splitlines() == ["root:x:0:", "staff:x:4343:", "extra:x:5000:bob,alice"]
    assert run_with_library(tmp_path, ["getent", "passwd", "nobody-here"], **env).returncode == 2


CACHE_PROBE_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void)
{
    struct stat a, b;
    int d;
    if (stat("/d/sub/f", &a) != 0)          /* remembers the directory /d/sub */
        return 2;
    d = open("/d", O_RDONLY | O_DIRECTORY); /* names relative to d: no other directory remembered */
    if (d < 0 || renameat(d, "sub", d, "old") != 0 || symlinkat("/e", d, "sub") != 0)
        return 3;
    if (stat("/d/sub/f", &b) != 0)          /* now through the new link: /e/f */
        return 4;
    printf("%lu %lu\n", (unsigned long)a.st_ino, (unsigned long)b.st_ino);
    return 0;
}
"""


def test_the_directory_cache_forgets_after_a_rename(tmp_path):
    gcc = shutil.which("gcc")
    if not gcc:
        pytest.skip("gcc is not installed; it builds the probe")
    (tmp_path / "probe.c").write_text(CACHE_PROBE_C)
    subprocess.run([gcc, "-O2", "-o", str(tmp_path / "probe"), str(tmp_path / "probe.c")], check=True)
    root = tmp_path / "root"
    (root / "d/sub").mkdir(parents=True)
    (root / "e").mkdir()
    (root / "d/sub/f").write_text("old\n")
    (root / "e/f").write_text("new\n")
    proc = run_with_library(tmp_path, [str(tmp_path / "probe")], HPCBOX_PRELOAD_ROOT=str(root))
    assert proc.returncode == 0, proc.stderr
    first, second = (int(x) for x in proc.stdout.split())
    assert (first, second) == ((root / "d/old/f").stat().st_ino, (root / "e/f").stat().st_ino)


def test_emulated_root_records_chown_and_stat_shows_it(tmp_path):
    """Root emulation: chown/chgrp that the kernel refuses go into the ownership record, which every
    later process's stat shows; the caller's own files show as the container user's; a device node
    is a regular file shown as the device; the configuration is not in the program's environment."""
    from hpcbox_engine_preload._engine import _OWNERS_HEADER

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/group").write_text("root:x:0:\n")
    for name in ("f", "g"):
        (root / name).write_text("x\n")
    owners = tmp_path / "ownership"
    owners.write_bytes(_OWNERS_HEADER)
    env = {"HPCBOX_PRELOAD_ROOT": str(root), "HPCBOX_PRELOAD_UID": "0", "HPCBOX_PRELOAD_GID": "0",
           "HPCBOX_PRELOAD_OWNERS": str(owners)}

    def out(*command):
        proc = run_with_library(tmp_path, list(command), **env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    out("chown", "12:34", "/f")
    out("chgrp", "5", "/f")
    assert out("stat", "-c", "%u %g", "/f", "/g") == "12 5\n0 0"
    assert out("ls", "-n", "/f").split()[2:4] == ["12", "5"]
    out("mv", "/f", "/h")  # the record follows the file
    assert out("stat", "-c", "%u %g", "/h") == "12 5"
    out("mknod", "/null", "c", "1", "3")
    assert out("stat", "-c", "%F %t %T %u", "/null") == "character special file 1 3 0"
    assert (root / "null").is_file()
    assert out("id", "-G") == "0"
    assert "HPCBOX_PRELOAD_" not in out("env")
    # another user: its own files show as its own, and it may not make devices
    other = {**env, "HPCBOX_PRELOAD_UID": "4242", "HPCBOX_PRELOAD_GID": "4343"}
    proc = run_with_library(tmp_path, ["stat", "-c", "%u %g", "/g"], **other)
    assert proc.stdout.strip() == "4242 4343"
    proc = run_with_library(tmp_path, ["mknod", "/null2", "c", "1", "3"], **other)
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr
    assert not (root / "null2").exists()


def test_mknod_of_an_emulated_ordinary_user_is_linuxs(tmp_path):
    """As Linux for a user without CAP_MKNOD: no device node and no stand-in file (EPERM), a real
    FIFO; nothing recorded."""
    from hpcbox_engine_preload._engine import _OWNERS_HEADER

    root = tmp_path / "root"
    root.mkdir()
    owners = tmp_path / "ownership"
    owners.write_bytes(_OWNERS_HEADER)
    env = {"HPCBOX_PRELOAD_ROOT": str(root), "HPCBOX_PRELOAD_UID": "1000", "HPCBOX_PRELOAD_GID": "1000",
           "HPCBOX_PRELOAD_OWNERS": str(owners)}
    for kind, numbers in (("c", ["1", "3"]), ("b", ["7", "0"])):
        proc = run_with_library(tmp_path, ["mknod", f"/dev-{kind}", kind, *numbers], **env)
        assert proc.returncode != 0 and "Operation not permitted" in proc.stderr, proc.stderr
        assert not os.path.lexists(root / f"dev-{kind}")
    proc = run_with_library(tmp_path, ["mknod", "/fifo", "p"], **env)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.lstat(root / "fifo").st_mode)
    proc = run_with_library(tmp_path, ["stat", "-c", "%F %u", "/fifo"], **env)
    assert proc.stdout == "fifo 1000\n", proc.stderr
    assert owners.read_bytes() == _OWNERS_HEADER  # no record written
