"""Where the engines' compiled helper programs live, and whether one can run on this machine.

The engines ship their helpers (``hpcbox-userns``, ``hpcbox-ptrace``, the preload launcher and
library) inside their Python packages. A distribution that installs them elsewhere (a libexec
directory) sets ``HPCBOX_LIBEXEC_DIR`` to that directory; it then applies to every engine.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing (with re and enum) costs ~3 ms of every `hpcbox run`: checkers only
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Optional, Union

LIBEXEC_ENV = "HPCBOX_LIBEXEC_DIR"


def helper_file(package_dir: Union[str, os.PathLike[str]], name: str) -> str:
    """``$HPCBOX_LIBEXEC_DIR/name`` when that variable is set, else ``package_dir/name``, as a string
    (the engines' run paths: no pathlib, ~1.5 ms to import)."""
    libexec = os.environ.get(LIBEXEC_ENV)
    return os.path.join(libexec if libexec else os.fspath(package_dir), name)


def helper_path(package_dir: Union[str, os.PathLike[str]], name: str) -> Path:
    """:func:`helper_file` as a Path."""
    from pathlib import Path  # lazily: importing this package stays light (hpcbox's start-up)

    return Path(helper_file(package_dir, name))


def _same_machine(elf_machine: str, host: str) -> bool:
    if elf_machine == host:
        return True
    return elf_machine == "i686" and host in ("i386", "i486", "i586")


def helper_problem(path: Union[str, os.PathLike[str]], executable: bool = True) -> Optional[str]:
    """None when the helper at ``path`` can run here, else why not, in words (missing, not
    executable, not a Linux program, built for another architecture, its loader missing)."""
    path = os.fspath(path)
    from hpcbox_oci_bundle.elf import Header  # (with struct: only when a helper is checked, not per run)

    name = os.path.basename(path)
    where = f" (set by {LIBEXEC_ENV})" if os.environ.get(LIBEXEC_ENV) else ""
    try:
        with open(path, "rb") as handle:
            header = handle.read(64)
            if header[:2] == b"#!":  # a script (a site's wrapper, a test's fake): the kernel runs it
                machine, interp = os.uname().machine, None
            else:
                elf = Header.parse(header)
                if elf is None:
                    return f"{path}{where} is not a Linux program (no ELF header)"
                machine, interp = elf.machine_name(), elf.interpreter(handle)
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

