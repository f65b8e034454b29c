"""The Debian packages (packaging/debian): built with `dpkg-buildpackage -us -uc -b` by
packaging/build-debs without network (in a network namespace of its own), clean for lintian, and
working once installed.

The .debs are built once per state of the sources and cached in $HPCBOX_TEST_CACHE (default
~/.cache/hpcbox-tests) under `debs-<hash of the sources>`, with lintian's report beside them: a build
and lintian take about 2 minutes on 2 cores, a cached run seconds.

"Installed" is a throwaway root: every package but the singularity engine (a packager's choice the
CLI must bear) is unpacked with `dpkg -x`, and this Debian 12 machine's own Python and Python
packages (the packages' Depends, which must all be installed Debian packages here) run it as the
ordinary user running the tests: `hpcbox info`, a pull from a loopback registry and `hpcbox run` with
two engines, then the completion and the man page the packages put in /usr/share.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
HOST_PYTHON = Path("/usr/bin/python3")
DEB_NAMES = ["hpcbox", "python3-hpcbox-registry", "python3-hpcbox-layers", "python3-hpcbox-oci-bundle",
             "python3-hpcbox-engine-runc", "python3-hpcbox-engine-ptrace", "python3-hpcbox-engine-preload",
             "python3-hpcbox-engine-singularity"]
LEFT_OUT = "python3-hpcbox-engine-singularity"
_SKIP_PARTS = {".git", "__pycache__", ".cbuild", ".pybuild", "dist", ".hypothesis", ".pytest_cache"}

pytestmark = pytest.mark.slow


def _source_hash() -> str:
    """A hash of everything the packages are built from (build leftovers and tests excluded)."""
    digest = hashlib.sha256()
    for top in ("packages", "csrc", "packaging", "integration/hpcbox_testing/guestpath_model.py"):
        base = ROOT / top
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            rel = path.relative_to(ROOT)
            if _SKIP_PARTS & set(rel.parts) or path.suffix in (".so", ".pyc") or "tests" in rel.parts:
                continue
            if path.parent.name.startswith("hpcbox_") and not path.suffix:
                continue  # an executable an editable install compiled beside the sources
            digest.update(f"{rel}\0{path.stat().st_mode & 0o111}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _offline() -> list:
    """A prefix that runs a command without network (a new network namespace holding only `lo`),
    where user namespaces allow it: the build must need no index and no mirror."""
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    return ["unshare", "-rn"] if probe.returncode == 0 else []


@pytest.fixture(scope="module")
def debs() -> Path:
    """The directory of the built .debs (and `lintian.txt`), built now when the cache lacks them."""
    for tool in ("dpkg-buildpackage", "pybuild", "lintian", "dh"):
        if shutil.which(tool, path="/usr/bin:/bin") is None:
            pytest.skip(f"{tool} not found: Debian's packaging tools are needed; run: "
                        "sudo scripts/setup-debian --tests")
    cache = Path(os.environ.get("HPCBOX_TEST_CACHE") or Path.home() / ".cache" / "hpcbox-tests")
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / f"debs-{_source_hash()}"
    with open(cache / ".debs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "lintian.txt").is_file():
            return final
        for old in cache.glob("debs-*"):
            shutil.rmtree(old)  # older states of the sources
        with tempfile.TemporaryDirectory(dir=cache, prefix=".build-debs-") as tmp:
            out = Path(tmp) / "debs"
            build = subprocess.run([*_offline(), str(ROOT / "packaging" / "build-debs"), str(out)],
                                   capture_output=True, text=True, check=False)
            assert build.returncode == 0, build.stderr[-4000:]
            changes = sorted(map(str, out.glob("*.changes")))
            report = subprocess.run(["lintian", "--no-tag-display-limit", *changes], capture_output=True,
                                    text=True, check=False, env={**os.environ, "PATH": "/usr/bin:/bin"})
            (out / "lintian.txt").write_text(report.stdout + report.stderr)
            out.rename(final)
    return final


def test_changelog_version_is_the_packages_version():
    """debian/changelog names the version of the sources it packages (`dch -v X.Y.Z-1` on release)."""
    first = (ROOT / "packaging" / "debian" / "changelog").read_text().splitlines()[0]
    upstream = re.fullmatch(r"hpcbox \(([^-)]+)-\d+\) \S+; urgency=\w+", first).group(1)
    about = {}
    exec((ROOT / "packages" / "cli" / "src" / "hpcbox" / "__about__.py").read_text(), about)
    assert upstream == about["__version__"], "add a debian/changelog entry for the new version"


def test_every_distribution_has_a_package(debs):
    built = {p.name.split("_")[0] for p in debs.glob("*.deb")}
    assert set(DEB_NAMES) <= built, sorted(built)
    for name in DEB_NAMES:
        (deb,) = debs.glob(f"{name}_*.deb")
        files = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                               check=True).stdout
        assert ".dist-info/METADATA" in files, name


def test_lintian_reports_no_errors(debs):
    report = (debs / "lintian.txt").read_text()
    errors = [line for line in report.splitlines() if line.startswith("E:")]
    assert errors == [], report


def test_every_dependency_is_a_debian_package_installed_here(debs):
    """The packages' Depends name real Debian 12 packages: the ones the throwaway root borrows."""
    ours = set(DEB_NAMES)
    listing = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Package}|${Provides}\n"],
                             capture_output=True, text=True, check=True).stdout
    installed = set()
    for line in listing.splitlines():
        status, package, provides = line.split("|")
        if status.startswith("ii"):
            installed.add(package)
            installed |= {re.split(r"[ (]", p.strip())[0] for p in provides.split(",") if p.strip()}
    for deb in debs.glob("*.deb"):
        depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True,
                                 check=True).stdout
        for alternatives in filter(None, (d.strip() for d in depends.split(","))):
            name = re.split(r"[ :(]", alternatives.split("|")[0].strip())[0]
            if name in ours:
                continue
            assert name in installed, f"{deb.name}: {name} is not an installed package (or provided by one)"


@pytest.fixture(scope="module")
def installed(debs, tmp_path_factory) -> Path:
    """A throwaway root with every package but LEFT_OUT unpacked."""
    if not HOST_PYTHON.is_file():
        pytest.skip("/usr/bin/python3 (Debian's python3) is needed to run the packages")
    root = tmp_path_factory.mktemp("deb-root")
    for name in DEB_NAMES:
        if name != LEFT_OUT:
            (deb,) = debs.glob(f"{name}_*.deb")
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root


def _site(root: Path) -> Path:
    return root / "usr" / "lib" / "python3" / "dist-packages"


def _hpcbox(root: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    """`hpcbox ARGS` from the throwaway root, run by Debian's python3; it must succeed."""
    env = {"PATH": f"{root}/usr/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "PYTHONPATH": str(_site(root))}
    proc = subprocess.run([str(root / "usr" / "bin" / "hpcbox"), "--home", str(home / "store"), *args],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, f"{shlex.join(args)}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_sibling_dependencies_carry_the_version_ranges(debs):
    (deb,) = debs.glob("python3-hpcbox-engine-runc_*.deb")
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True,
                             check=True).stdout
    ranges = set(re.findall(r"python3-hpcbox-oci-bundle \(([<>=]+) [\d.]+\)", depends))
    assert ranges == {">=", "<<"}, depends


def test_requirements_are_met_without_the_left_out_engine(installed):
    """What `pip check` checks, over the root's and this machine's Python packages."""
    paths = [str(_site(installed)), "/usr/lib/python3/dist-packages"]
    dists = {d.metadata["Name"].lower().replace("_", "-"): d for d in metadata.distributions(path=paths)}
    assert "hpcbox-cli" in dists and "hpcbox-engine-singularity" not in dists
    for name in [n for n in dists if n.startswith("hpcbox")]:
        for text in dists[name].requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            assert req.name.lower() in dists, f"{name} requires {text}"


def test_info_and_run_as_an_ordinary_user(installed, tmp_path, registry_http):
    version = _hpcbox(installed, tmp_path, "version").stdout
    assert re.search(r"^hpcbox-engine-singularity\s+not installed$", version, re.M), version
    assert re.search(r"^hpcbox-engine-runc\s+\d", version, re.M), version
    info = _hpcbox(installed, tmp_path, "info").stdout
    assert "runc" in info and "ptrace" in info, info
    pushed = registry_http.push("busybox", "hpcbox/debs", "1")
    _hpcbox(installed, tmp_path, "pull", "-q", pushed.ref)  # gzip layers: zlib, there is no isal here
    ran = _hpcbox(installed, tmp_path, "run", "--rm", pushed.ref, "sh", "-c", "echo from the debs")
    assert ran.stdout == "from the debs\n"
    traced = _hpcbox(installed, tmp_path, "run", "--rm", "--engine", "ptrace", pushed.ref,
                     "sh", "-c", "echo traced")
    assert traced.stdout == "traced\n"


def test_completion_and_man_page_are_installed(installed):
    completion = installed / "usr/share/bash-completion/completions/hpcbox"
    script = (f"source {shlex.quote(str(completion))}; COMP_WORDS=(hpcbox r); COMP_CWORD=1; "
              "COMP_LINE='hpcbox r'; COMP_POINT=8; _shtab_hpcbox hpcbox r hpcbox; "
              'printf "%s\\n" "${COMPREPLY[@]}"')
    offered = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                             check=True).stdout.split()
    assert {"rm", "rmi", "run", "rename", "rmname"} <= set(offered), offered
    assert (installed / "usr/share/zsh/vendor-completions/_hpcbox").read_text().startswith("#compdef hpcbox")
    page = gzip.decompress((installed / "usr/share/man/man1/hpcbox.1.gz").read_bytes()).decode()
    assert page.startswith('.TH HPCBOX "1"') and "'hpcbox run'" in page
