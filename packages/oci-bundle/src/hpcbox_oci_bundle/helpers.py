"""Where the engines' compiled helper programs live, and whether one can run on this machine.

The engines ship their helpers (``hpcbox-userns``, ``hpcbox-ptrace``, the preload launcher and
library) inside their Python packages. A distribution that installs them elsewhere (a libexec
directory) sets ``HPCBOX_LIBEXEC_DIR`` to that directory; it then applies to every engine.
"""

from __future__ import annotations

import os
import struct

TYPE_CHECKING = False  # typing (with re and enum) costs ~3 ms of every `hpcbox run`: checkers only
if TYPE_CHECKING:
    from pathlib import Path
    from typing import BinaryIO, Optional, Union

LIBEXEC_ENV = "HPCBOX_LIBEXEC_DIR"
# ELF e_machine -> the name os.uname().machine gives on Linux
_MACHINES = {3: "i686", 40: "armv7l", 62: "x86_64", 183: "aarch64", 243: "riscv64", 21: "ppc64le",
             22: "s390x"}


def helper_path(package_dir: Union[str, os.PathLike[str]], name: str) -> Path:
    """``$HPCBOX_LIBEXEC_DIR/name`` when that variable is set, else ``package_dir/name``."""
    from pathlib import Path  # lazily: importing this package stays light (hpcbox's start-up)

    libexec = os.environ.get(LIBEXEC_ENV)
    return Path(libexec) / name if libexec else Path(package_dir) / name


def _same_machine(elf_machine: str, host: str) -> bool:
    if elf_machine == host:
        return True
    return elf_machine == "i686" and host in ("i386", "i486", "i586")


def helper_problem(path: Union[str, os.PathLike[str]], executable: bool = True) -> Optional[str]:
    """None when the helper at ``path`` can run here, else why not, in words (missing, not
    executable, not a Linux program, built for another architecture, its loader missing)."""
    path = os.fspath(path)
    name = os.path.basename(path)
    where = f" (set by {LIBEXEC_ENV})" if os.environ.get(LIBEXEC_ENV) else ""
    try:
        with open(path, "rb") as handle:
            header = handle.read(64)
            if header[:2] == b"#!":  # a script (a site's wrapper, a test's fake): the kernel runs it
                machine, interp = os.uname().machine, None
            elif header[:4] != b"\x7fELF" or len(header) < 64:
                return f"{path}{where} is not a Linux program (no ELF header)"
            else:
                little = header[5] == 1
                machine_id = struct.unpack_from("<H" if little else ">H", header, 18)[0]
                machine = _MACHINES.get(machine_id, f"ELF machine {machine_id}")
                interp = _interpreter(handle, header, little)
    except FileNotFoundError:
        return f"{path}{where} is missing"
    except OSError as error:
        return f"{path}{where} cannot be read: {error.strerror}"
    host = os.uname().machine
    if not _same_machine(machine, host):
        # named by its path when HPCBOX_LIBEXEC_DIR chose it: that variable is then what to fix
        return f"{f'{path}{where}' if where else name} is built for {machine}, but this machine is {host}"
    if executable and not os.access(path, os.X_OK):
        return f"{path}{where} is not executable"
    if executable and interp and not os.path.exists(interp):
        return f"{name} needs the program loader {interp}, which this machine lacks"
    return None


def _interpreter(handle: BinaryIO, header: bytes, little: bool) -> Optional[str]:
    """PT_INTERP of a 64-bit ELF file (None for static programs, libraries and 32-bit files)."""
    if header[4] != 2:
        return None
    order = "<" if little else ">"
    phoff = struct.unpack_from(order + "Q", header, 32)[0]
    phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
    for index in range(phnum):
        handle.seek(phoff + index * phentsize)
        entry = handle.read(56)
        if len(entry) < 56:
            return None
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(order + "IIQQQQ", entry)
        if p_type == 3:
            handle.seek(p_offset)
            return handle.read(p_filesz).rstrip(b"\0").decode(errors="replace")
    return None
