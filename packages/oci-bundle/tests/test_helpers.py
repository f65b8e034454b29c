"""helper_path and helper_problem: where an engine's compiled helper is, and why it cannot run."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

from hpcbox_oci_bundle import LIBEXEC_ENV, helper_path, helper_problem

HOST_MACHINE = {"x86_64": 62, "aarch64": 183}.get(os.uname().machine, 62)


def elf(path: Path, machine: int = HOST_MACHINE, interp: str = "") -> Path:
    """A minimal little-endian ELF64 header with one program header (PT_INTERP when interp is given)."""
    phoff, phentsize = 64, 56
    blob = bytearray(b"\x7fELF\x02\x01\x01" + bytes(9))
    blob += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, phoff, 0, 0, 64, phentsize, 1, 64, 0, 0)
    data = interp.encode() + b"\0"
    p_type = 3 if interp else 1
    blob += struct.pack("<IIQQQQQQ", p_type, 4, phoff + phentsize, 0, 0, len(data), len(data), 1)
    blob += data
    path.write_bytes(bytes(blob))
    path.chmod(0o755)
    return path


def test_a_program_of_this_machine_can_run(tmp_path):
    assert helper_problem(elf(tmp_path / "h")) is None
    real = shutil.which("true")
    assert real and helper_problem(real) is None


def test_missing(tmp_path):
    problem = helper_problem(tmp_path / "hpcbox-userns")
    assert problem == f"{tmp_path / 'hpcbox-userns'} is missing"


def test_built_for_another_architecture(tmp_path):
    other, name = (183, "aarch64") if HOST_MACHINE == 62 else (62, "x86_64")
    problem = helper_problem(elf(tmp_path / "hpcbox-ptrace", machine=other))
    assert problem == f"hpcbox-ptrace is built for {name}, but this machine is {os.uname().machine}"


def test_not_executable_and_not_a_program(tmp_path):
    path = elf(tmp_path / "h")
    path.chmod(0o644)
    assert helper_problem(path) == f"{path} is not executable"
    assert helper_problem(path, executable=False) is None  # a library: read, not run
    text = tmp_path / "t"
    text.write_text("hello\n")
    assert helper_problem(text) == f"{text} is not a Linux program (no ELF header)"


def test_its_loader_is_missing(tmp_path):
    path = elf(tmp_path / "hpcbox-preload-exec", interp="/lib/ld-none.so.9")
    assert helper_problem(path) == (
        "hpcbox-preload-exec needs the program loader /lib/ld-none.so.9, which this machine lacks")


def test_a_script_runs(tmp_path):
    script = tmp_path / "fake"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    assert helper_problem(script) is None


def test_libexec_dir_overrides_the_package_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(LIBEXEC_ENV, raising=False)
    assert helper_path(tmp_path / "pkg", "hpcbox-userns") == tmp_path / "pkg" / "hpcbox-userns"
    monkeypatch.setenv(LIBEXEC_ENV, "/usr/libexec/hpcbox")
    assert helper_path(tmp_path / "pkg", "hpcbox-userns") == Path("/usr/libexec/hpcbox/hpcbox-userns")
    assert helper_problem("/usr/libexec/hpcbox/none") == (
        f"/usr/libexec/hpcbox/none (set by {LIBEXEC_ENV}) is missing")


def test_another_architecture_chosen_by_the_libexec_dir_names_the_variable(tmp_path, monkeypatch):
    other, name = (183, "aarch64") if HOST_MACHINE == 62 else (62, "x86_64")
    path = elf(tmp_path / "hpcbox-ptrace", machine=other)
    monkeypatch.setenv(LIBEXEC_ENV, str(tmp_path))
    assert helper_problem(path) == (
        f"{path} (set by {LIBEXEC_ENV}) is built for {name}, but this machine is {os.uname().machine}")
