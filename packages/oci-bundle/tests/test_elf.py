"""The one ELF reader: class, byte order, machine and PT_INTERP of 32- and 64-bit, little- and
big-endian files, and files that are not ELF or are cut short."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess

import pytest
from hpcbox_oci_bundle.elf import Header, word_size


def elf(bits: int = 64, little: bool = True, machine: int = 62, interp: str = "", entries: int = 2) -> bytes:
    """An ELF file header and a program header table of *entries* entries, the last one PT_INTERP
    when *interp* is given (PT_LOAD otherwise), the interpreter's path after the table."""
    order = "<" if little else ">"
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if little else 2, 1]) + bytes(9)
    if bits == 64:
        ehsize, phentsize, word = 64, 56, "Q"
    else:
        ehsize, phentsize, word = 52, 32, "I"
    data = interp.encode() + b"\0"
    at = ehsize + phentsize * entries
    head = ident + struct.pack(f"{order}HHI{word}{word}{word}IHHHHHH", 2, machine, 1, 0, ehsize, 0, 0,
                               ehsize, phentsize, entries, 64, 0, 0)
    table = b""
    for index in range(entries):
        kind = 3 if interp and index == entries - 1 else 1
        if bits == 64:
            table += struct.pack(f"{order}IIQQQQQQ", kind, 4, at, 0, 0, len(data), len(data), 1)
        else:
            table += struct.pack(f"{order}IIIIIIII", kind, at, 0, 0, len(data), len(data), 4, 1)
    assert len(head) == ehsize and len(table) == phentsize * entries
    return head + table + data


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("little", [True, False])
def test_header_and_interpreter_of_every_class_and_byte_order(bits, little):
    blob = elf(bits, little, machine=183, interp="/lib/ld-linux-aarch64.so.1")
    header = Header.parse(blob[:64])
    assert header is not None
    assert (header.bits, header.little, header.machine, header.phnum) == (bits, little, 183, 2)
    assert header.machine_name() == "aarch64"
    assert header.interpreter(io.BytesIO(blob)) == "/lib/ld-linux-aarch64.so.1"
    assert header.has_interpreter(io.BytesIO(blob))
    assert word_size(blob) == bits


def test_a_static_program_names_no_interpreter():
    blob = elf(64, interp="")
    header = Header.parse(blob[:64])
    assert header is not None
    assert header.interpreter(io.BytesIO(blob)) is None
    assert not header.has_interpreter(io.BytesIO(blob))
    assert Header(64, True, 999, phoff=0, phentsize=56, phnum=0).machine_name() == "ELF machine 999"


def test_not_elf_or_cut_short():
    assert word_size(b"#!/bin/sh\n") is None
    assert word_size(b"\x7fEL") is None
    assert word_size(b"\x7fELF\x03") == 0  # ELF, of no class we know
    assert Header.parse(b"\x7fELF\x03\x01" + bytes(58)) is None
    assert Header.parse(b"\x7fELF\x02\x03" + bytes(58)) is None  # no byte order
    assert Header.parse(elf(64)[:63]) is None  # a 64-bit header is 64 bytes
    assert Header.parse(elf(32)[:52]) is not None  # a 32-bit one, 52
    blob = elf(64, interp="/lib/ld.so", entries=3)
    header = Header.parse(blob)
    assert header is not None
    cut = blob[:64 + 56 * 2 + 10]  # the table ends inside the PT_INTERP entry
    assert header.interpreter(io.BytesIO(cut)) is None
    assert not header.has_interpreter(io.BytesIO(cut))


def test_an_absurd_table_is_not_read_whole():
    blob = bytearray(elf(64, interp="/lib/ld.so"))
    struct.pack_into("<HH", blob, 54, 0xFFFF, 0xFFFF)  # e_phentsize, e_phnum: 4 GiB of table
    header = Header.parse(bytes(blob))
    assert header is not None
    assert header.interpreter(io.BytesIO(bytes(blob))) is None
    assert not header.has_interpreter(io.BytesIO(bytes(blob)))


def test_this_machines_own_programs():
    true = shutil.which("true")
    assert true
    with open(true, "rb") as handle:
        header = Header.parse(handle.read(64))
        assert header is not None
        assert header.machine_name() == os.uname().machine
        interp = header.interpreter(handle)
    readelf = shutil.which("readelf")
    if readelf:  # binutils' reading of the same file, when it is installed
        out = subprocess.run([readelf, "-l", true], capture_output=True, text=True, check=True).stdout
        named = [line.split(":", 1)[1].strip(" ]") for line in out.splitlines() if "interpreter:" in line]
        assert named == ([interp] if interp else [])
    if interp:
        assert os.path.exists(interp)
