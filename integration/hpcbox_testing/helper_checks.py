"""What the C packages' tests check of their helper programs (hpcbox-userns, hpcbox-ptrace,
hpcbox-preload-exec and the preload libraries), written once: the `--version` line that
csrc/common/hpcbox_version.h prints, and an ELF file built for another machine.

No installed package: each C package's tests load it by path (their conftest's `helper_checks`
fixture), from here in the repository or from the copy their sdist carries (tests/helper_checks.py).
Standard library only.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path
from typing import Union

HERE = os.uname().machine
OTHER = "x86_64" if HERE == "aarch64" else "aarch64"
ELF_MACHINES = {"x86_64": 62, "aarch64": 183}
ET_EXEC, ET_DYN = 2, 3


def version_line(program: Union[str, os.PathLike], name: str, version: str) -> None:
    """`program --version` prints "NAME VERSION (ARCHITECTURE)" and exits 0, ARCHITECTURE as
    `uname -m` names this machine's (the helper was built for it)."""
    done = subprocess.run([os.fspath(program), "--version"], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{name} {version} ({HERE})\n", ""), done


def other_machines_elf(path: Path, elf_type: int = ET_EXEC) -> Path:
    """An ELF64 header of a program (ET_EXEC) or a library (ET_DYN) built for another architecture
    (aarch64 here, x86_64 there), executable: what a wheel for the wrong machine would install."""
    path.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9)
                     + struct.pack("<HHIQQQIHHHHHH", elf_type, ELF_MACHINES[OTHER], 1, 0, 0, 0, 0, 64, 56, 0,
                                   64, 0, 0))
    path.chmod(0o755)
    return path
