"""Installing hpcbox from its wheels, as a researcher would: scripts/build-wheelhouse, the wheels'
portability (tags, auditwheel, the glibc symbol versions of every shipped ELF file, reproducible
bytes), and an install with pip into a Python 3.9 venv inside a Debian 11 userland that has no
C compiler, entered as the ordinary user (user namespaces + pivot_root: hpcbox_testing.userland),
where `hpcbox info`, `hpcbox pull` from the loopback registry and `hpcbox run` with the runc, ptrace
and preload engines must work. The aarch64 wheels, cross-built here (scripts/build-wheelhouse
--target aarch64), get the same checks of tags and symbols, and run under qemu-aarch64 with Debian's
arm64 Python: every helper's --version, every cffi module, the preload library.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest
from hpcbox_testing import images
from hpcbox_testing.userland import run_in_userland
from test_cli_common import hpcbox, hpcbox_env, ok

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "scripts" / "build-wheelhouse"
DISTRIBUTIONS = ["hpcbox", "hpcbox_cli", "hpcbox_registry", "hpcbox_layers", "hpcbox_oci_bundle",
                 "hpcbox_engine_ptrace", "hpcbox_engine_preload", "hpcbox_engine_runc",
                 "hpcbox_engine_singularity"]
BINARY = {"hpcbox_engine_ptrace": "cp39-abi3", "hpcbox_engine_preload": "cp39-abi3",
          "hpcbox_engine_runc": "py3-none"}
MANYLINUX = (2, 17)
ELF_MACHINES = {"x86_64": "Advanced Micro Devices X86-64", "aarch64": "AArch64"}
DEBIAN11_PYTHON = "debian11-python.tar.gz"


def build_wheelhouse(out: Path, *args: str, **env: str) -> List[Path]:
    full = {**os.environ, "HPCBOX_BUILD_PYTHON": sys.executable, **env}
    done = subprocess.run([str(BUILD), *args, str(out)], capture_output=True, text=True, env=full,
                          check=False, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return sorted(out.glob("hpcbox*.whl"))


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """The nine wheels, plus their dependencies' wheels for CPython 3.9 (Debian 11's python3)."""
    out = tmp_path_factory.mktemp("wheelhouse")
    build_wheelhouse(out, "--deps", HPCBOX_WHEELHOUSE_PYTHONS="3.9")
    return out


def ours(directory: Path) -> Dict[str, Path]:
    return {wheel.name.split("-")[0]: wheel for wheel in directory.glob("hpcbox*.whl")}


def check_tags(wheelhouse: Path, machine: str) -> None:
    wheels = ours(wheelhouse)
    assert sorted(wheels) == sorted(DISTRIBUTIONS)
    for name, wheel in wheels.items():
        tag = wheel.name[:-4].split("-", 2)[2]
        if name in BINARY:
            assert tag == f"{BINARY[name]}-manylinux_2_17_{machine}", wheel.name
        else:
            assert tag == "py3-none-any", wheel.name
        with zipfile.ZipFile(wheel) as archive:
            licenses = [n for n in archive.namelist() if n.split("/")[-1] == "LICENSE" and ".dist-info/" in n]
            assert len(licenses) == 1, (wheel.name, archive.namelist())
            assert b"Apache License" in archive.read(licenses[0])


def test_nine_wheels_with_portable_tags(wheelhouse):
    check_tags(wheelhouse, os.uname().machine)


def shipped_elves(wheel: Path, into: Path) -> List[Path]:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return [p for p in into.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"]


def check_elf_versions(wheelhouse: Path, into: Path, machine: str) -> Dict[str, tuple]:
    """Every shipped ELF file: built for ``machine``, no glibc symbol version newer than the tag
    allows, no C++ runtime; returns each file's (DT_NEEDED, has PT_INTERP). Checked with binutils'
    readelf (independent of the build hooks' own ELF reader)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) is not installed")
    checked = {}
    for name in BINARY:
        for elf in shipped_elves(ours(wheelhouse)[name], into / name):
            dump = subprocess.run([readelf, "-h", "-V", "-d", "-l", "-W", str(elf)], capture_output=True,
                                  text=True, check=True).stdout
            assert re.search(r"Machine:\s+" + ELF_MACHINES[machine], dump), (elf.name, machine)
            found = re.findall(r"Name: GLIBC_([\d.]+)", dump)
            versions = {tuple(int(p) for p in v.split(".")) for v in found}
            assert not versions or max(versions) <= MANYLINUX, (elf.name, sorted(versions))
            assert not re.search(r"GLIBCXX|CXXABI", dump), elf.name
            checked[elf.name] = (re.findall(r"\(NEEDED\).*\[(.+)\]", dump), "INTERP" in dump)
    # the helpers run anywhere: static; the launcher is dynamic (the library is preloaded into it)
    assert checked["hpcbox-userns"] == ([], False)
    assert checked["hpcbox-ptrace"] == ([], False)
    assert checked["hpcbox-preload-exec"] == (["libc.so.6"], True)
    assert checked["libhpcbox-preload.so"][0] == ["libc.so.6"]
    assert checked["_core.abi3.so"][0] == ["libc.so.6"]  # no libpython: the stable ABI
    if "libhpcbox-preload-musl.so" in checked:
        assert checked["libhpcbox-preload-musl.so"][0] == []  # no glibc linker script named
    return checked


def test_no_shipped_elf_needs_a_glibc_newer_than_the_tag(wheelhouse, tmp_path):
    check_elf_versions(wheelhouse, tmp_path, os.uname().machine)


def check_auditwheel(wheelhouse: Path, machine: str) -> None:
    for name in BINARY:
        wheel = ours(wheelhouse)[name]
        done = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr
        match = re.search(r'consistent with the following platform tag:\s+"manylinux_(\d+)_(\d+)_(\w+)"',
                          done.stdout)
        assert match and (int(match[1]), int(match[2])) <= MANYLINUX, done.stdout
        assert match[3] == machine, done.stdout


def test_auditwheel_confirms_the_tags(wheelhouse):
    check_auditwheel(wheelhouse, os.uname().machine)


def test_two_builds_are_byte_identical_and_leave_only_wheels(wheelhouse, tmp_path):
    again = tmp_path / "again"
    again.mkdir()
    (again / "notes.txt").write_text("kept\n")
    build_wheelhouse(again)
    assert sorted(p.name for p in again.iterdir()) == sorted([*(w.name for w in ours(wheelhouse).values()),
                                                              "notes.txt"])
    for name, wheel in ours(wheelhouse).items():
        rebuilt = ours(again)[name]
        digests = {hashlib.sha256(path.read_bytes()).hexdigest() for path in (wheel, rebuilt)}
        assert len(digests) == 1, name
    with zipfile.ZipFile(ours(again)["hpcbox_engine_ptrace"]) as archive:
        for info in archive.infolist():
            assert b"/tmp/" not in archive.read(info), f"{info.filename} embeds a temporary path"


# -- a Debian 11 userland without a compiler, entered as the ordinary user ---------------------

def _extract_rootfs(tarball: Path, root: Path) -> None:
    """GNU tar as the ordinary user: files become the caller's; device nodes are left out."""
    root.mkdir()
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(root), "--exclude=./dev/*", "--no-same-owner"],
                   check=True, capture_output=True)


@pytest.fixture(scope="session")
def debian11_python(tmp_path_factory, test_images) -> Path:
    try:
        tarball = test_images.input_path(DEBIAN11_PYTHON)
    except images.MissingInputError as error:
        pytest.skip(str(error))
    root = tmp_path_factory.mktemp("debian11") / "rootfs"
    _extract_rootfs(tarball, root)
    (root / "home/user").mkdir(parents=True)
    probe = run_in_userland(root, "id -u; python3 --version; command -v cc gcc || echo no-compiler")
    assert probe.returncode == 0, f"cannot enter the Debian 11 userland: {probe.stderr.strip()[-1000:]}"
    assert probe.stdout.split("\n")[:3] == [str(os.getuid()), "Python 3.9.2", "no-compiler"], probe.stdout
    return root


def test_install_and_run_in_debian11_without_a_compiler(debian11_python, wheelhouse, registry_http):
    root = debian11_python
    shutil.copytree(wheelhouse, root / "wheelhouse")
    pushed = registry_http.push("debian12", "hpcbox/install-debian12", "1")
    script = f"""
python3 -m venv /home/user/venv
/home/user/venv/bin/python -m pip install -q --no-index --find-links /wheelhouse hpcbox
export PATH=/home/user/venv/bin:$PATH
hpcbox --version
hpcbox info --json > /home/user/info.json
hpcbox pull -q {pushed.ref}
hpcbox info
for engine in runc ptrace preload; do
    version=$(hpcbox run --rm --engine $engine {pushed.ref} cat /etc/debian_version)
    echo "$engine: $version"
done
"""
    done = run_in_userland(root, script)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    info = json.loads((root / "home/user/info.json").read_text())
    for engine in ("runc", "ptrace", "preload"):
        assert info["engines"][engine]["available"], (engine, info["engines"][engine]["reason"])
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[-3:]] == ["runc", "ptrace", "preload"]
    assert all(line.split(": ")[1].startswith("12.") for line in lines[-3:]), lines
    # nothing was compiled there: the venv holds the wheels' own files
    site = next((root / "home/user/venv/lib").glob("python3.9/site-packages"))
    assert (site / "hpcbox_engine_ptrace" / "_core.abi3.so").is_file()


# -- the aarch64 wheels: cross-built here, run under qemu-user with Debian's arm64 Python ------

ARM64_PYTHON = "arm64-python"  # scripts/prepare-test-inputs: Debian 12's arm64 python3.11 and musl, unpacked
MUSL_INCLUDE = "usr/include/aarch64-linux-musl"
HELPERS = {"hpcbox_engine_runc": "hpcbox-userns", "hpcbox_engine_ptrace": "hpcbox-ptrace",
           "hpcbox_engine_preload": "hpcbox-preload-exec"}
# What the two C path cores answer, and what the preload library tells of programs: the same on
# every architecture, so the aarch64 modules' answers (under qemu) must equal this machine's.
CORE_PROBE = r"""
import ctypes, json, os, platform, sys
from hpcbox_engine_ptrace import _native as ptrace
from hpcbox_engine_preload import _native as preload

root, program = sys.argv[1], sys.argv[2]
paths = ["/", "etc/passwd", "/etc/../etc/./passwd", "/etc/passwd/", "/link/hostname", "/abs/passwd",
         "/loop", "/missing/x", "/etc/passwd/x", "/../../etc", "/data/file", "../.."]


def answer(call, *args):
    try:
        return call(*args)
    except OSError as error:
        return f"errno {error.errno}"


bindings = [("/data", os.path.join(os.path.dirname(root), "bound"))]
print(json.dumps({
    "machine": platform.machine(),
    "abi": [ptrace.abi_version(), preload.abi_version(),
            ctypes.CDLL(str(preload.preload_library_path())).hpcbox_preload_abi_version()],
    "ptrace": [[answer(ptrace.translate, root, p, "/etc", bindings, follow),
                answer(ptrace.resolve, root, p, "/etc", bindings, follow)]
               for p in paths for follow in (True, False)],
    "preload": [answer(preload.translate, root, p, "/etc", bindings, follow)
                for p in paths for follow in (True, False)],
    "untranslate": [ptrace.untranslate(root, root + "/etc/x", bindings),
                    list(preload.untranslate(root, os.path.dirname(root) + "/bound/y", bindings))],
    "classify": [preload.classify(program), preload.classify(root + "/script")],
}, sort_keys=True))
"""


def cross_tools() -> Dict[str, str]:
    tools = {name: shutil.which(name) for name in ("aarch64-linux-gnu-gcc", "qemu-aarch64")}
    if os.uname().machine != "x86_64" or None in tools.values():
        pytest.skip("the aarch64 wheels need x86_64 with gcc-aarch64-linux-gnu and qemu-user (scripts/"
                    "setup-debian installs them)")
    return tools


@pytest.fixture(scope="session")
def arm64_python(test_images) -> Path:
    root = test_images.inputs_dir / ARM64_PYTHON
    needed = ("usr/bin/python3.11", "usr/include/python3.11/Python.h", f"{MUSL_INCLUDE}/stdio.h")
    if not all((root / path).is_file() for path in needed):
        pytest.skip(f"test input {root} is missing: run `sudo scripts/prepare-test-inputs`")
    return root


@pytest.fixture(scope="session")
def wheelhouse_aarch64(tmp_path_factory, arm64_python) -> Path:
    cross_tools()
    out = tmp_path_factory.mktemp("wheelhouse-aarch64")
    build_wheelhouse(out, "--target", "aarch64",
                     HPCBOX_PYTHON_INCLUDE=str(arm64_python / "usr/include/python3.11"),
                     HPCBOX_MUSL_INCLUDE=str(arm64_python / MUSL_INCLUDE))
    return out


@pytest.fixture(scope="session")
def aarch64_site(wheelhouse_aarch64, tmp_path_factory) -> Path:
    """The aarch64 wheels unpacked, as pip would install them (helpers executable)."""
    site = tmp_path_factory.mktemp("aarch64-site")
    for wheel in ours(wheelhouse_aarch64).values():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    for package, helper in HELPERS.items():
        (site / package / helper).chmod(0o755)
    return site


def test_aarch64_wheels_tags_symbols_and_auditwheel(wheelhouse_aarch64, tmp_path):
    check_tags(wheelhouse_aarch64, "aarch64")
    checked = check_elf_versions(wheelhouse_aarch64, tmp_path, "aarch64")
    assert "libhpcbox-preload-musl.so" in checked  # built with the cross compiler on musl's headers
    check_auditwheel(wheelhouse_aarch64, "aarch64")


def test_aarch64_helpers_and_cffi_modules_run_under_qemu(aarch64_site, arm64_python, tmp_path):
    """Each helper's --version under qemu-aarch64 (the preload launcher through its own entry point
    and arm64 glibc); each cffi module imported by Debian's arm64 Python, giving the same answers
    as this machine's build; the preload library loaded into that Python with LD_PRELOAD, and its
    musl build into a musl program."""
    qemu = cross_tools()["qemu-aarch64"]
    version = importlib.metadata.version("hpcbox-engine-runc")
    for package, helper in HELPERS.items():
        program = aarch64_site / package / helper
        done = subprocess.run([qemu, "-L", str(arm64_python), str(program), "--version"], capture_output=True,
                              text=True, check=False, timeout=120)
        assert (done.returncode, done.stdout, done.stderr) == (0, f"{helper} {version} (aarch64)\n", "")

    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "etc/hostname").write_text("box\n")
    (root / "link").symlink_to("etc")
    (root / "abs").symlink_to("/etc")
    (root / "loop").symlink_to("loop")
    (root / "script").write_text("#!/bin/sh -e\necho hi\n")
    (tmp_path / "bound").mkdir()
    (tmp_path / "bound/file").write_text("data\n")
    program = arm64_python / "usr/bin/python3.11"
    native = subprocess.run([sys.executable, "-c", CORE_PROBE, str(root), str(program)], capture_output=True,
                            text=True, check=True, timeout=120)
    python = [qemu, "-L", str(arm64_python), "-E", f"PYTHONPATH={aarch64_site}", "-E", "PYTHONNOUSERSITE=1"]
    arm = subprocess.run([*python, str(program), "-c", CORE_PROBE, str(root), str(program)],
                         capture_output=True, text=True, check=False, timeout=300)
    assert arm.returncode == 0, arm.stderr[-3000:]
    answers, expected = json.loads(arm.stdout), json.loads(native.stdout)
    assert answers.pop("machine") == "aarch64" and expected.pop("machine") == os.uname().machine
    assert answers == expected
    assert answers["classify"] == [["dynamic", "/lib/ld-linux-aarch64.so.1"], ["script", ""]]
    assert answers["ptrace"][0] == [str(root), "/"], answers["ptrace"][0]  # the probe probed something

    library = aarch64_site / "hpcbox_engine_preload" / "libhpcbox-preload.so"
    loaded = subprocess.run([*python, "-E", f"LD_PRELOAD={library}", str(program), "-c", "print('loaded')"],
                            capture_output=True, text=True, check=False, timeout=120)
    assert (loaded.returncode, loaded.stdout) == (0, "loaded\n"), loaded.stderr
    assert "cannot be preloaded" not in loaded.stderr, loaded.stderr

    musl_program = musl_hello(arm64_python, tmp_path)
    library = aarch64_site / "hpcbox_engine_preload" / "libhpcbox-preload-musl.so"
    loaded = subprocess.run([qemu, "-L", str(arm64_python), "-E", f"LD_PRELOAD={library}", str(musl_program)],
                            capture_output=True, text=True, check=False, timeout=120)
    assert (loaded.returncode, loaded.stdout, loaded.stderr) == (0, "musl: stat 0\n", "")


def musl_hello(arm64_python: Path, tmp_path: Path) -> Path:
    """A dynamically linked aarch64 musl program (what musl-gcc would make, spelled out for the
    cross compiler and the unpacked musl-dev:arm64)."""
    cross = cross_tools()["aarch64-linux-gnu-gcc"]
    lib = arm64_python / "usr/lib/aarch64-linux-musl"
    source = tmp_path / "hello.c"
    source.write_text('#include <stdio.h>\n#include <sys/stat.h>\nint main(void)\n{\n    struct stat st;\n'
                      '    printf("musl: stat %d\\n", stat("/", &st));\n    return 0;\n}\n')
    own = subprocess.run([cross, "-print-file-name=include"], capture_output=True, text=True,
                         check=True).stdout.strip()
    libgcc = subprocess.run([cross, "-print-libgcc-file-name"], capture_output=True, text=True,
                            check=True).stdout.strip()
    out = tmp_path / "hello-musl"
    subprocess.run([cross, "-nostdinc", "-isystem", str(arm64_python / MUSL_INCLUDE), "-isystem", own,
                    "-fPIE", "-pie", "-nostdlib", "-o", str(out), str(lib / "Scrt1.o"), str(lib / "crti.o"),
                    str(source), "-Wl,--no-as-needed", str(arm64_python / "lib/ld-musl-aarch64.so.1"), libgcc,
                    str(lib / "crtn.o"), "-Wl,-dynamic-linker=/lib/ld-musl-aarch64.so.1"], check=True)
    return out


def test_info_names_every_helper_that_cannot_run_here(aarch64_site, tmp_path):
    """`hpcbox info` with the aarch64 helpers (HPCBOX_LIBEXEC_DIR, as a site's install would place
    them) and with none: each engine is unavailable and says which helper and why."""
    libexec = tmp_path / "libexec"
    libexec.mkdir()
    for package, helper in HELPERS.items():
        shutil.copy2(aarch64_site / package / helper, libexec / helper)
    shutil.copy2(aarch64_site / "hpcbox_engine_preload" / "libhpcbox-preload.so", libexec)
    empty = tmp_path / "empty"
    empty.mkdir()
    machine = os.uname().machine
    for directory, reason in ((libexec, f"{libexec}/{{}} (set by HPCBOX_LIBEXEC_DIR) is built for aarch64, "
                                         f"but this machine is {machine}"),
                              (empty, f"{empty}/{{}} (set by HPCBOX_LIBEXEC_DIR) is missing")):
        env = hpcbox_env(HPCBOX_LIBEXEC_DIR=str(directory))
        info = json.loads(ok(hpcbox(tmp_path / "home", "info", "--json", env=env)).stdout)
        for package, helper in HELPERS.items():
            entry = info["engines"][package.rsplit("_", 1)[1]]
            assert not entry["available"], (package, entry)
            assert reason.format(helper) in entry["reason"], (package, entry["reason"])
