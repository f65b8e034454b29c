"""ELF headers, read once for every hpcbox package: the class, byte order and machine of a program,
and its program loader (``PT_INTERP``).

The engines ask whether their compiled helpers can run here (:mod:`hpcbox_oci_bundle.helpers`); the
CLI asks whether a container's program is dynamically linked (``hpcbox.engines.is_dynamic``) and
which of the host's GPU libraries have this Python's word size (``hpcbox.gpu.native_elf``). Nothing
here follows a symlink or a ``#!`` line: callers decide what a script means to them. (The build code,
``csrc/cbuild/hpcbox_cbuild.py``, reads the symbol versions of the files it has just built on its own:
it runs inside a package's build, where no hpcbox package is installed.)
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False  # typing costs milliseconds of every `hpcbox run`: checkers only
if TYPE_CHECKING:
    from typing import BinaryIO, List, Optional

MAGIC = b"\x7fELF"
PT_INTERP = 3
#: e_machine -> the name ``os.uname().machine`` gives on Linux
MACHINES = {3: "i686", 40: "armv7l", 62: "x86_64", 183: "aarch64", 243: "riscv64", 21: "ppc64le",
            22: "s390x"}
_CLASSES = {1: 32, 2: 64}
# header sizes, and where e_phoff, e_phentsize (then e_phnum) lie in them, by word size
_LAYOUT = {32: (52, "I", 28, 42), 64: (64, "Q", 32, 54)}
_MAX_READ = 1 << 20  # a program header table or a loader path is far smaller


def word_size(head: bytes) -> Optional[int]:
    """32 or 64 for the first bytes of an ELF file (EI_CLASS), 0 for an ELF file of another class, None
    for anything that is not ELF. Five bytes are enough."""
    if len(head) < 5 or head[:4] != MAGIC:
        return None
    return _CLASSES.get(head[4], 0)


class Header:
    """The fields of an ELF file header that hpcbox reads."""

    __slots__ = ("bits", "little", "machine", "phentsize", "phnum", "phoff")

    def __init__(self, bits: int, little: bool, machine: int, *, phoff: int, phentsize: int, phnum: int):
        self.bits = bits
        self.little = little
        self.machine = machine
        self.phoff = phoff
        self.phentsize = phentsize
        self.phnum = phnum

    @classmethod
    def parse(cls, head: bytes) -> Optional[Header]:
        """The header at the start of *head* (read 64 bytes: the 64-bit header's size), or None when
        *head* is no complete ELF header of a known class and byte order."""
        bits = word_size(head)
        if not bits or head[5] not in (1, 2):
            return None
        size, word, phoff_at, phentsize_at = _LAYOUT[bits]
        if len(head) < size:
            return None
        order = "<" if head[5] == 1 else ">"
        machine = struct.unpack_from(order + "H", head, 18)[0]
        phoff = struct.unpack_from(order + word, head, phoff_at)[0]
        phentsize, phnum = struct.unpack_from(order + "HH", head, phentsize_at)
        return cls(bits, head[5] == 1, machine, phoff=phoff, phentsize=phentsize, phnum=phnum)

    def machine_name(self) -> str:
        """``x86_64``, ``aarch64``, ... as ``os.uname().machine`` says it, else ``ELF machine N``."""
        return MACHINES.get(self.machine, f"ELF machine {self.machine}")

    def interpreter(self, handle: BinaryIO) -> Optional[str]:
        """The program loader this file names (``PT_INTERP``), read through *handle* (the open file,
        seekable); None for a static program, a library, or a truncated program header table."""
        # p_type, then p_offset and p_filesz: their places differ between the two classes
        fields = ("<" if self.little else ">") + ("IIQQQQ" if self.bits == 64 else "IIIII")
        if self.phentsize < struct.calcsize(fields):
            return None
        for entry in self._entries(handle):
            values = struct.unpack_from(fields, entry)
            if values[0] == PT_INTERP:
                offset, size = (values[2], values[5]) if self.bits == 64 else (values[1], values[4])
                handle.seek(offset)
                return handle.read(min(size, _MAX_READ)).rstrip(b"\0").decode(errors="replace")
        return None

    def has_interpreter(self, handle: BinaryIO) -> bool:
        """Whether a ``PT_INTERP`` entry is in the program header table: a dynamically linked program."""
        order = "<" if self.little else ">"
        return self.phentsize >= 4 and any(struct.unpack_from(order + "I", entry)[0] == PT_INTERP
                                           for entry in self._entries(handle))

    def _entries(self, handle: BinaryIO) -> List[bytes]:
        """The complete entries of the program header table (a table cut short by the end of the file,
        or absurdly large, yields the entries that were read)."""
        handle.seek(self.phoff)
        table = handle.read(min(self.phentsize * self.phnum, _MAX_READ))
        size = self.phentsize
        complete = min(self.phnum, len(table) // size) if size else 0
        return [table[i * size:(i + 1) * size] for i in range(complete)]
