"""Building the C packages as a distribution packager would: their own CC (split like a shell),
CPPFLAGS/CFLAGS/LDFLAGS reaching every compile and link (the helper executables too), no -Werror
unless the project's own environment asks for it, one line (no traceback) when the compiler is
missing or fails, and an sdist that builds alone (the shared build code travels inside it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = REPO / "packages"
BUILD = "import sys; from hatchling.build import build_{0}; print(build_{0}(sys.argv[1]))"


def build(package_dir: Path, out: Path, kind: str = "wheel", **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS",
                                                              "HPCBOX_WERROR")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", BUILD.format(kind), str(out)], cwd=package_dir, env=full,
                          capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture(scope="module")
def gcc() -> str:
    path = shutil.which("gcc")
    if path is None:
        pytest.skip("gcc is not installed")
    return path


def compile_commands(output: str, package: str):
    return [line for line in output.splitlines() if line.startswith(f"{package}: ") and " -o " in line]


@pytest.mark.parametrize("package", ["engine-runc", "engine-ptrace", "engine-preload"])
def test_a_packagers_cc_and_flags_reach_every_command(package, gcc, tmp_path):
    done = build(PACKAGES / package, tmp_path, CC=f"{gcc} -DHPCBOX_PACKAGER_CC=1",
                 CPPFLAGS="-DHPCBOX_PACKAGER_CPP=1", CFLAGS="-O1 -fstack-protector-strong",
                 LDFLAGS="-Wl,-z,relro")
    assert done.returncode == 0, done.stderr[-3000:]
    commands = compile_commands(done.stdout, f"hpcbox-{package}")
    assert commands, done.stdout
    for command in commands:
        # the musl build of the preload library takes musl-gcc (its own C library), the rest CC
        cc = f"{shutil.which('musl-gcc')} " if "-musl.so " in command else f"{gcc} -DHPCBOX_PACKAGER_CC=1 "
        assert command.split(": ", 1)[1].startswith(cc), command
        for flag in ("-DHPCBOX_PACKAGER_CPP=1", "-O1", "-fstack-protector-strong", "-Wl,-z,relro"):
            assert f" {flag}" in command, (flag, command)
        assert "-Werror" not in command.split(), command
        # the packager's flags come after the project's own, so that theirs win (-O1 over -O2)
        assert command.index(" -O2 ") < command.index(" -O1 "), command
    wheels = list(tmp_path.glob("*.whl"))
    assert len(wheels) == 1 and sorted(p.name for p in tmp_path.iterdir()) == [wheels[0].name]


def test_the_projects_env_asks_for_werror(gcc, tmp_path):
    done = build(PACKAGES / "engine-runc", tmp_path, CC=gcc, HPCBOX_WERROR="1")
    assert done.returncode == 0, done.stderr[-3000:]
    [command] = compile_commands(done.stdout, "hpcbox-engine-runc")
    assert "-Werror" in command.split() and "-static" in command.split()


def test_cflags_reach_the_helper_executable(gcc, tmp_path):
    done = build(PACKAGES / "engine-runc", tmp_path, CC=gcc, CFLAGS="-fbogus-flag")
    assert done.returncode == 1
    assert "-fbogus-flag" in done.stderr  # the compiler's own complaint
    assert done.stderr.strip().splitlines()[-1] == (
        "hpcbox-engine-runc: the C compiler failed (exit status 1) building hpcbox-userns; its messages "
        "are above")
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())


def test_no_compiler_is_one_line(tmp_path):
    done = build(PACKAGES / "engine-ptrace", tmp_path, CC="/nonexistent/cc")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == (
        "hpcbox-engine-ptrace: no C compiler found (CC='/nonexistent/cc'); building from source needs "
        "one (Debian: apt-get install gcc), or install the binary wheel instead (pip install "
        "--only-binary :all: ...)")


def test_an_sdist_builds_alone_and_carries_the_license(gcc, tmp_path):
    sdists = tmp_path / "sdist"
    done = build(PACKAGES / "engine-preload", sdists, kind="sdist")
    assert done.returncode == 0, done.stderr[-3000:]
    [sdist] = sdists.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "src")
    top = tmp_path / "src" / sdist.name[: -len(".tar.gz")]
    for needed in ("hpcbox_cbuild.py", "csrc/guestpath/guestpath.c", "csrc/common/hpcbox_version.h",
                   "launcher/start.c", "LICENSE"):
        assert f"{top.name}/{needed}" in names, needed
    wheels = tmp_path / "wheels"
    done = build(top, wheels, CC=gcc)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata_lines = archive.read(metadata).decode().splitlines()
    assert "hpcbox_engine_preload/hpcbox-preload-exec" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    project_urls = [line for line in metadata_lines if line.startswith("Project-URL:")]
    assert {line.split(",")[0] for line in project_urls} >= {"Project-URL: Homepage", "Project-URL: Source"}


@pytest.mark.parametrize("package", ["engine-runc", "engine-ptrace"])
def test_the_other_c_sdists_carry_the_shared_headers(package, tmp_path):
    # the helpers' --version comes from csrc/common/hpcbox_version.h: each sdist needs its copy
    done = build(PACKAGES / package, tmp_path, kind="sdist")
    assert done.returncode == 0, done.stderr[-3000:]
    [sdist] = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    for needed in ("hpcbox_cbuild.py", "csrc/common/hpcbox_version.h"):
        assert f"{sdist.name[: -len('.tar.gz')]}/{needed}" in names, needed


def test_every_package_carries_the_projects_license():
    license_text = (REPO / "LICENSE").read_bytes()
    assert license_text.lstrip().startswith(b"Apache License") and b"Version 2.0" in license_text[:200]
    for package in sorted(PACKAGES.iterdir()):
        if (package / "pyproject.toml").is_file():
            assert (package / "LICENSE").read_bytes() == license_text, package.name
            assert 'license = "Apache-2.0"' in (package / "pyproject.toml").read_text()


def test_a_cross_build_without_the_targets_python_headers_is_one_line(tmp_path):
    """Cross-compiling a cffi module needs the target's pyconfig.h; without it, one line saying how
    to get it (the aarch64 wheels themselves: integration/test_install_wheels.py)."""
    cross = shutil.which("aarch64-linux-gnu-gcc")
    if cross is None or os.uname().machine != "x86_64":
        pytest.skip("needs x86_64 with gcc-aarch64-linux-gnu (scripts/setup-debian installs it)")
    include = Path(sysconfig.get_paths()["include"])
    if (include.parent / "aarch64-linux-gnu" / include.name / "pyconfig.h").is_file():
        pytest.skip("this machine has the arm64 Python headers installed (multiarch)")
    done = build(PACKAGES / "engine-ptrace", tmp_path, CC=cross)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().startswith(
        "hpcbox-engine-ptrace: cross-compiling the Python module for aarch64 needs that machine's Python "
        "headers"), done.stderr
    assert "HPCBOX_PYTHON_INCLUDE=DIR/usr/include/python3.X" in done.stderr and not list(tmp_path.iterdir())


def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomllib or tomli")
    with open(path, "rb") as f:
        return tomllib.load(f)


def test_every_package_names_the_same_repository_and_its_own_docs():
    """One project address in every distribution's metadata and in the Debian source package; each
    distribution's Documentation and Changelog links name its own folder's files, which exist."""
    repositories = set()
    for package in sorted(PACKAGES.iterdir()):
        if not (package / "pyproject.toml").is_file():
            continue
        urls = _read_toml(package / "pyproject.toml")["project"]["urls"]
        assert urls["Homepage"] == urls["Source"], package.name
        repositories.add(urls["Source"])
        assert urls["Issues"] == urls["Source"] + "/issues", package.name
        for key, filename in (("Documentation", "README.md"), ("Changelog", "CHANGELOG.md")):
            prefix = urls["Source"] + "/blob/main/"
            assert urls[key].startswith(prefix), (package.name, key)
            assert urls[key][len(prefix):] == f"packages/{package.name}/{filename}", (package.name, key)
            assert (package / filename).is_file(), (package.name, filename)
    [repository] = repositories
    control = (REPO / "packaging" / "debian" / "control").read_text()
    assert f"Homepage: {repository}\n" in control
    assert f"Vcs-Git: {repository}.git\n" in control
