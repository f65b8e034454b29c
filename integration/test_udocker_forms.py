"""Every udocker command form that its documentation shows, run against hpcbox under udocker's name
(the ``hpcbox-udocker`` console script), in one store, against the loopback registry: the exit status
and the output each gives is the one docs/udocker-mapping.md promises, and that table is generated
from the same data (:mod:`udocker_forms`), so the two cannot drift."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import udocker_forms
from test_cli_common import hpcbox_env


def test_mapping_table_is_generated_from_the_forms():
    assert udocker_forms.current_block() == udocker_forms.generated_block(), (
        "docs/udocker-mapping.md's generated table is stale: run 'python integration/udocker_forms.py'")


def _prepare(work: Path) -> None:
    (work / "env").write_text("FROMFILE=yes\n")
    (work / "script.sh").write_text("echo from-stdin-script\nexit 0\n")


def _tree(work: Path) -> None:
    """For ``run --location``: a root tree outside the store, from the exported rootfs."""
    tree = work / "tree"
    if not tree.exists():
        tree.mkdir()
        trusted = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}  # modes kept (busybox: 0755)
        with tarfile.open(work / "rootfs.tar") as tar:
            tar.extractall(tree, **trusted)


def test_udocker_documented_forms(registry_http, tmp_path):
    command = Path(sys.executable).parent / "hpcbox-udocker"
    assert command.exists(), "the hpcbox package installs the hpcbox-udocker console script"
    image = registry_http.push("busybox", "hpcbox/forms-busybox", "1").ref
    home, work, repo = tmp_path / "store", tmp_path / "work", tmp_path / "repo"
    work.mkdir()
    _prepare(work)
    values = {"IMAGE": image, "REG": registry_http.host, "C": "forms-c", "W": str(work), "REPO": str(repo)}
    failures = []
    for form in udocker_forms.FORMS:
        argv = udocker_forms.substitute(form.argv, values)
        if any("/tree" in a for a in argv):
            _tree(work)
        env = hpcbox_env(HPCBOX_HOME=str(home))
        env.update({k: udocker_forms.substitute([v], values)[0] for k, v in form.env.items()})
        if "UDOCKER_DIR" in form.env:
            env.pop("HPCBOX_HOME")
        data = (work / form.stdin).read_bytes() if form.stdin else b""
        proc = subprocess.run([str(command), *argv], input=data, capture_output=True, env=env,
                              timeout=300, check=False)
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        problem = None
        if proc.returncode != form.rc:
            problem = f"exit {proc.returncode}, documented {form.rc}"
        elif form.stdout and not re.search(form.stdout, out, re.MULTILINE):
            problem = f"stdout does not match {form.stdout!r}"
        elif form.quiet_stderr and err:
            problem = "stderr is not empty"
        elif form.rc != 0 and not (err.startswith("hpcbox: error: ") and len(err.splitlines()) == 1):
            problem = "the failure is not one 'hpcbox: error:' line"
        if problem:
            failures.append(f"{form.udocker!r} ({' '.join(argv)}): {problem}\n  stdout: {out[-400:]!r}\n"
                            f"  stderr: {err[-800:]!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", ["udocker", "hpcbox-udocker"])
def test_udocker_named_command_uses_udockers_name_in_help(name, tmp_path):
    link = tmp_path / name
    link.symlink_to(Path(sys.executable).parent / "hpcbox-udocker")
    proc = subprocess.run([str(link)], capture_output=True, text=True, env=hpcbox_env(), check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: udocker "), proc
