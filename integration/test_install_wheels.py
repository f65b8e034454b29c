"""Installing hpcbox from its wheels, as a researcher would: scripts/build-wheelhouse, the wheels'
portability (tags, auditwheel, the glibc symbol versions of every shipped ELF file, reproducible
bytes), and an install with pip into a Python 3.9 venv inside a Debian 11 userland that has no
C compiler, entered as the ordinary user (user namespaces + pivot_root: hpcbox_testing.userland),
where `hpcbox info`, `hpcbox pull` from the loopback registry and `hpcbox run` with the runc, ptrace
and preload engines must work.
"""

from __future__ import annotations

import hashlib
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

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "scripts" / "build-wheelhouse"
DISTRIBUTIONS = ["hpcbox", "hpcbox_cli", "hpcbox_registry", "hpcbox_layers", "hpcbox_oci_bundle",
                 "hpcbox_engine_ptrace", "hpcbox_engine_preload", "hpcbox_engine_runc",
                 "hpcbox_engine_singularity"]
BINARY = {"hpcbox_engine_ptrace": "cp39-abi3", "hpcbox_engine_preload": "cp39-abi3",
          "hpcbox_engine_runc": "py3-none"}
MANYLINUX = (2, 17)
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


def test_nine_wheels_with_portable_tags(wheelhouse):
    wheels = ours(wheelhouse)
    assert sorted(wheels) == sorted(DISTRIBUTIONS)
    machine = os.uname().machine
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


def shipped_elves(wheel: Path, into: Path) -> List[Path]:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return [p for p in into.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"]


def test_no_shipped_elf_needs_a_glibc_newer_than_the_tag(wheelhouse, tmp_path):
    """Checked with binutils' readelf (independent of the build hooks' own ELF reader)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) is not installed")
    checked = {}
    for name in BINARY:
        for elf in shipped_elves(ours(wheelhouse)[name], tmp_path / name):
            dump = subprocess.run([readelf, "-V", "-d", "-l", "-W", str(elf)], capture_output=True,
                                  text=True, check=True).stdout
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


def test_auditwheel_confirms_the_tags(wheelhouse):
    for name in BINARY:
        wheel = ours(wheelhouse)[name]
        done = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True,
                              text=True, check=False)
        assert done.returncode == 0, done.stderr
        match = re.search(r'consistent with the following platform tag:\s+"manylinux_(\d+)_(\d+)_',
                          done.stdout)
        assert match and (int(match[1]), int(match[2])) <= MANYLINUX, done.stdout


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
