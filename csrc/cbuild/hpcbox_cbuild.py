"""How hpcbox's C packages compile: shared by the build hooks of engine-runc, engine-ptrace and
engine-preload (each sdist carries a copy as ``hpcbox_cbuild.py``, so that each builds alone).

What a packager or a user building from source can rely on:

- ``CC`` is split like a shell would (``CC="ccache gcc"``, ``CC="gcc -m64"``); ``CPPFLAGS``,
  ``CFLAGS`` and ``LDFLAGS`` reach every compile and link, executables included, after the
  project's own flags (so theirs win); every command is printed before it runs.
- ``-Werror`` only where the project's own CI or developer environment asks for it
  (``HPCBOX_WERROR=1``, set by hatch.toml and scripts/run-tests), never in a packager's build.
- The helper executables are linked statically (``-static``) so that they run on any Linux of
  their architecture whatever its C library; ``HPCBOX_STATIC_HELPERS=0`` links them dynamically
  (distributions that forbid static linking). The LD_PRELOAD launcher must stay dynamic (the
  library is preloaded into it) and pins its one new glibc symbol instead.
- A missing compiler or missing Python headers end the build with one line saying what to
  install, or to install the binary wheel instead.
- The wheel's platform tag: ``manylinux_2_17_<arch>`` when every ELF file in it needs no glibc
  symbol version newer than 2.17 (checked here, on the built files), else ``linux_<arch>``.
- Every compile gets ``-DHPCBOX_VERSION="<the package's version>"``: the helpers' ``--version``,
  printed by the one header they share, ``csrc/common/hpcbox_version.h`` (``common_include``).
- Reproducible: no debug information, build directories mapped away (``-ffile-prefix-map``), so
  two builds of one commit give identical files.
"""

from __future__ import annotations

import os
import shlex
import shutil
import struct
import subprocess
import sysconfig
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

OWN_FLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra"]
MANYLINUX_GLIBC = (2, 17)
# ELF e_machine values of the architectures hpcbox ships helpers for.
MACHINES = {62: "x86_64", 183: "aarch64"}
# uname -m -> Debian's architecture name (multiarch packages: libpython3-dev:arm64)
DEBIAN_ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}


class BuildError(SystemExit):
    """One line on stderr and exit status 1: what is missing or failed, and what to do."""

    def __init__(self, package: str, message: str):
        super().__init__(f"{package}: {message}")


def common_include(root: Path) -> Path:
    """The C headers every helper shares (``csrc/common/``: hpcbox_version.h): the sdist's copy in
    ``root/csrc/common``, else the repository's, two levels above the package ``root``."""
    for candidate in (Path(root) / "csrc" / "common", Path(root).parent.parent / "csrc" / "common"):
        if (candidate / "hpcbox_version.h").is_file():
            return candidate
    raise BuildError(Path(root).name, "csrc/common/hpcbox_version.h not found beside the package nor at the "
                                      "repository root; build from the hpcbox repository or from its sdist")


def _env_flags(name: str) -> List[str]:
    return shlex.split(os.environ.get(name, ""))


def werror() -> List[str]:
    return ["-Werror"] if os.environ.get("HPCBOX_WERROR") == "1" else []


def static_helpers() -> bool:
    return os.environ.get("HPCBOX_STATIC_HELPERS", "1") != "0"


class Compiler:
    """The C compiler of one package's build, with the environment's flags."""

    def __init__(self, package: str, prefix_maps: Iterable[Path] = (), version: str = ""):
        self.package = package
        self.defines = [f'-DHPCBOX_VERSION="{version}"'] if version else []
        self.argv = shlex.split(os.environ.get("CC") or "cc")
        if not self.argv or shutil.which(self.argv[0]) is None:
            shown = os.environ.get("CC") or "cc"
            raise BuildError(package, (
                f"no C compiler found (CC={shown!r}); building from source needs one (Debian: "
                "apt-get install gcc), or install the binary wheel instead (pip install --only-binary "
                ":all: ...)"))
        self.maps = [f"-ffile-prefix-map={Path(p).resolve()}=." for p in prefix_maps]
        self._triple: Optional[str] = None

    def with_compiler(self, argv: List[str]) -> Compiler:
        """The same flags with another compiler (musl-gcc)."""
        other = Compiler.__new__(Compiler)
        other.package, other.argv, other.maps, other._triple = self.package, argv, self.maps, None
        other.defines = self.defines
        return other

    def triple(self) -> str:
        if getattr(self, "_triple", None) is None:
            done = subprocess.run([*self.argv, "-dumpmachine"], capture_output=True, text=True, check=False)
            if done.returncode != 0 or not done.stdout.strip():
                raise BuildError(self.package, f"{shlex.join(self.argv)} -dumpmachine failed; is CC a C "
                                               "compiler?")
            self._triple = done.stdout.strip()
        return self._triple

    def machine(self) -> str:
        """The target architecture (x86_64, aarch64, ...) of this compiler."""
        return self.triple().split("-")[0]

    @staticmethod
    def native_machine() -> str:
        return os.uname().machine

    def targets_glibc(self) -> bool:
        return self.triple().endswith("-gnu")

    def command(self, out: Path, sources: Sequence[Path], includes: Sequence[Path] = (),
                extra: Sequence[str] = (), link: Sequence[str] = ()) -> List[str]:
        return [*self.argv, *OWN_FLAGS, *werror(), *self.maps, *self.defines, *extra,
                *(f"-I{d}" for d in includes),
                *_env_flags("CPPFLAGS"), *_env_flags("CFLAGS"), "-o", str(out), *map(str, sources),
                *_env_flags("LDFLAGS"), *link]

    def run(self, cmd: List[str], what: str, check: bool = True) -> int:
        print(f"{self.package}: {shlex.join(cmd)}", flush=True)
        try:
            rc = subprocess.run(cmd, check=False).returncode
        except OSError as error:
            raise BuildError(self.package, f"cannot run the C compiler {cmd[0]}: {error.strerror}") from None
        if rc != 0 and check:
            raise BuildError(self.package, f"the C compiler failed (exit status {rc}) building {what}; "
                                           "its messages are above")
        return rc

    def executable(self, out: Path, sources: Sequence[Path], includes: Sequence[Path] = (), *,
                   static: Optional[bool] = None, extra: Sequence[str] = (),
                   link: Sequence[str] = ()) -> Path:
        static = static_helpers() if static is None else static
        cmd = self.command(out, sources, includes, extra, [*link, *(["-static"] if static else [])])
        self.run(cmd, out.name)
        out.chmod(0o755)
        return out

    def python_headers(self) -> Tuple[Path, List[str]]:
        """The directory holding the target's Python.h, and the flags that find its pyconfig.h.

        ``HPCBOX_PYTHON_INCLUDE`` names it (a cross build: the target's headers, e.g. Debian's
        libpython3.11-dev:arm64 extracted with ``dpkg-deb -x DIR``, DIR/usr/include/python3.11);
        else the building Python's own. Debian's pyconfig.h there is a wrapper that includes
        ``<TRIPLE/python3.X/pyconfig.h>``: the directory above is searched last for it
        (``-idirafter``), after the compiler's own headers."""
        given = os.environ.get("HPCBOX_PYTHON_INCLUDE")
        python_include = Path(given or sysconfig.get_paths()["include"])
        if not (python_include / "Python.h").is_file():
            raise BuildError(self.package, (
                f"the Python headers (Python.h) are not in {python_include}"
                f"{' (HPCBOX_PYTHON_INCLUDE)' if given else ''}; install them (Debian: apt-get install "
                "python3-dev), or install the binary wheel instead"))
        machine = self.machine()
        if not given and machine != self.native_machine():
            wrapped = python_include.parent / self.triple() / python_include.name / "pyconfig.h"
            if not wrapped.is_file():
                arch = DEBIAN_ARCHES.get(machine, machine)
                raise BuildError(self.package, (
                    f"cross-compiling the Python module for {machine} needs that machine's Python "
                    f"headers ({wrapped} is missing): install them (Debian: dpkg --add-architecture "
                    f"{arch} and apt-get install libpython3-dev:{arch}), or extract the target's "
                    "libpython3-dev .deb with dpkg-deb -x DIR and set HPCBOX_PYTHON_INCLUDE="
                    "DIR/usr/include/python3.X"))
        return python_include, (["-idirafter", str(python_include.parent)] if given else [])

    def cffi_module(self, ffibuilder, module: str, out_dir: Path, *, sources: Sequence[Path],
                    includes: Sequence[Path], extra: Sequence[str] = ()) -> Path:
        """Compile a cffi API-mode module for CPython's stable ABI (``<name>.abi3.so``): cffi's
        generated code defines Py_LIMITED_API, so one build serves every CPython >= 3.9."""
        python_include, after = self.python_headers()
        c_file = out_dir / f"{module.rpartition('.')[2]}.c"
        ffibuilder.emit_c_code(str(c_file))
        out = out_dir / f"{module.rpartition('.')[2]}.abi3.so"
        cmd = self.command(out, [c_file, *sources], [*includes, python_include],
                           ["-fPIC", "-shared", "-fwrapv", "-fno-strict-aliasing", "-DNDEBUG", *extra,
                            *after])
        self.run(cmd, f"the Python module {module}")
        return out


# -- ELF: what a built file needs --------------------------------------------------------------

SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NEEDED = 1


class ElfInfo:
    def __init__(self, machine: str, needed: List[str], versions: Dict[str, Set[str]], interp: Optional[str]):
        self.machine = machine      # "x86_64", "aarch64" or "e_machine N"
        self.needed = needed        # DT_NEEDED entries
        self.versions = versions    # library -> version names needed from it (GLIBC_2.14, ...)
        self.interp = interp        # PT_INTERP, None for static executables and libraries

    def glibc_max(self) -> Optional[Tuple[int, ...]]:
        found = [tuple(int(p) for p in name[6:].split("."))
                 for names in self.versions.values() for name in names if name.startswith("GLIBC_2")]
        return max(found) if found else None


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo:
    """DT_NEEDED, the needed symbol versions and PT_INTERP of a little-endian ELF64 file."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path}: not a little-endian 64-bit ELF file")
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff, shoff = struct.unpack_from("<QQ", data, 32)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 54)
    interp = None
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:
            interp = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]

    def string(table: int, offset: int) -> str:
        start = sections[table][4] + offset
        return data[start:data.index(b"\0", start)].decode()

    needed: List[str] = []
    versions: Dict[str, Set[str]] = {}
    for _, sh_type, _, _, offset, size, link, info, _, _ in sections:
        if sh_type == SHT_DYNAMIC:
            for pos in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, pos)
                if tag == DT_NEEDED:
                    needed.append(string(link, value))
        elif sh_type == SHT_GNU_VERNEED:
            pos = offset
            for _ in range(info):
                _, count, file_name, aux, next_entry = struct.unpack_from("<HHIII", data, pos)
                names = versions.setdefault(string(link, file_name), set())
                apos = pos + aux
                for _ in range(count):
                    _, _, _, name, anext = struct.unpack_from("<IHHII", data, apos)
                    names.add(string(link, name))
                    apos += anext
                pos += next_entry
    return ElfInfo(MACHINES.get(machine, f"e_machine {machine}"), needed, versions, interp)


def platform_tag(files: Iterable[Path], machine: str) -> str:
    """manylinux_2_17_<machine> when no file needs a glibc symbol newer than 2.17, else linux_<machine>."""
    for path in files:
        if is_elf(path):
            newest = read_elf(path).glibc_max()
            if newest is not None and newest > MANYLINUX_GLIBC:
                print(f"note: {path.name} needs GLIBC_{'.'.join(map(str, newest))}: tagging linux_{machine}")
                return f"linux_{machine}"
    return f"manylinux_{MANYLINUX_GLIBC[0]}_{MANYLINUX_GLIBC[1]}_{machine}"


# -- the hatch hooks' common part ----------------------------------------------------------------

def place(hook, version: str, build_data: dict, built: Sequence[Path], *, package: str, machine: str,
          abi3: bool) -> None:
    """Put the built files where the target wants them: into src/<package> for an editable
    install (imports come from there; stale builds of the cffi module removed), else into the
    wheel, which is tagged for what it holds."""
    src = Path(hook.root) / "src" / package
    for path in built:
        if version == "editable":
            if path.name.endswith(".abi3.so"):
                stem = path.name.split(".")[0]
                for stale in src.glob(f"{stem}.*.so"):
                    stale.unlink()
            shutil.copy2(path, src / path.name)
        else:
            build_data["force_include"][str(path)] = f"{package}/{path.name}"
    build_data["pure_python"] = False
    build_data["infer_tag"] = False
    build_data["tag"] = f"{'cp39-abi3' if abi3 else 'py3-none'}-{platform_tag(built, machine)}"
