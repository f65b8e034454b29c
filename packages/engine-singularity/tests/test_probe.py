"""Finding the binary, reading its version and exec options, and explaining what is missing."""

from __future__ import annotations

import os
import re

import pytest
from singularity_standin import KINDS

from hpcbox_engine_singularity import (
    SingularityEngine,
    UnavailableError,
    find_binary,
    parse_features,
    parse_version,
    probe,
)


@pytest.mark.parametrize(
    ("text", "flavor", "version"),
    [
        ("apptainer version 1.2.5\n", "apptainer", (1, 2, 5)),
        ("apptainer version 1.3.0-rc.2\n", "apptainer", (1, 3, 0)),
        ("singularity-ce version 3.11.4\n", "singularity-ce", (3, 11, 4)),
        ("singularity-ce version 4.1.0-jammy\n", "singularity-ce", (4, 1, 0)),
        ("singularity version 3.8.7\n", "singularity", (3, 8, 7)),
        ("2.6.1-dist\n", "singularity", (2, 6, 1)),
        ("2.4\n", "singularity", (2, 4, 0)),
    ],
)
def test_parse_version(text, flavor, version):
    assert parse_version(text) == (flavor, version)


@pytest.mark.parametrize("text", ["", "apptainer version unknown", "garbage"])
def test_parse_version_refuses_text_without_a_number(text):
    with pytest.raises(ValueError, match="no version number"):
        parse_version(text)


def test_parse_features_reads_option_lines_only():
    text = """Usage:
  apptainer exec [exec options...] <container> <command>

Description:
  See --rocm below.

Options:
  -B, --bind strings      a user-bind path specification
      --no-home           do NOT mount users home directory
  -w, --writable          by default all Apptainer containers are available as read only

Examples:
  $ apptainer exec --fakeroot image.sif true
"""
    assert parse_features(text) == {"bind", "no-home", "writable"}


def test_parse_features_old_layout():
    text = ("EXEC OPTIONS:\n    -B/--bind <spec>   A user-bind\n    -e/--cleanenv  Clean\n"
            "        --nv   Nvidia\n")
    assert parse_features(text) == {"bind", "cleanenv", "nv"}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_probe_each_standin(standin, kind):
    fake = standin(kind)
    inst = probe(str(fake.path))
    flavor, line, features = KINDS[kind]
    assert inst.version_text == line
    assert inst.features - {"help"} == features  # examples and prose in the help never count as options
    assert inst.command_name == flavor
    assert inst.env_prefix == ("APPTAINERENV_" if flavor == "apptainer" else "SINGULARITYENV_")


def test_find_binary_prefers_apptainer_then_singularity(standin):
    singularity = standin("singularity-ce-3.11.4")
    apptainer = standin("apptainer-1.2.5")
    both = os.pathsep.join([str(singularity.path.parent), str(apptainer.path.parent)])
    assert find_binary({"PATH": both}) == str(apptainer.path)
    assert find_binary({"PATH": str(singularity.path.parent)}) == str(singularity.path)


def test_find_binary_override_by_path_and_by_name(standin):
    apptainer = standin("apptainer-1.2.5")
    other = standin("singularity-3.8.7", name="my-singularity")
    environ = {"PATH": os.pathsep.join([str(apptainer.path.parent), str(other.path.parent)])}
    assert find_binary({**environ, "HPCBOX_SINGULARITY": str(other.path)}) == str(other.path)
    assert find_binary({**environ, "HPCBOX_SINGULARITY": "my-singularity"}) == str(other.path)


def test_find_binary_bad_override(tmp_path):
    with pytest.raises(UnavailableError, match=r"HPCBOX_SINGULARITY=/no/such is not an executable file: "):
        find_binary({"PATH": str(tmp_path), "HPCBOX_SINGULARITY": "/no/such"})


def test_not_found_says_what_to_install(tmp_path):
    engine = SingularityEngine(environ={"PATH": str(tmp_path)})
    ok, reason = engine.available()
    assert not ok
    assert "neither apptainer nor singularity is on PATH" in reason
    assert "module load apptainer" in reason and "install Apptainer" in reason


def test_available_with_the_modern_binaries(standin, make_engine):
    for kind in ("apptainer-1.2.5", "singularity-ce-3.11.4", "singularity-3.8.7"):
        ok, reason = make_engine(standin(kind)).available()
        assert ok, reason
        assert KINDS[kind][1] in reason
        assert "--fakeroot" in reason


def test_available_found_on_path(standin):
    fake = standin("apptainer-1.0.3")
    ok, reason = SingularityEngine(environ={"PATH": str(fake.path.parent)}).available()
    assert ok, reason
    assert reason.startswith(f"{fake.path} (apptainer version 1.0.3)")


def test_too_old(standin, make_engine):
    ok, reason = make_engine(standin("singularity-2.6.1")).available()
    assert not ok
    assert re.search(r"\(2\.6\.1-dist\) is too old: hpcbox needs singularity 3\.0\.0 or newer", reason)
    assert "module load apptainer" in reason


def test_missing_required_option(standin, make_engine):
    ok, reason = make_engine(standin("singularity-3.8.7", drop=("pwd", "cleanenv"))).available()
    assert not ok
    assert "lacks the exec option(s) --cleanenv, --pwd" in reason


def test_missing_optional_options_are_listed(standin, make_engine):
    ok, reason = make_engine(standin("singularity-3.2.1")).available()
    assert ok, reason
    assert re.search(r"missing: .*--fakeroot.*--no-mount", reason)


def test_unparsable_version(standin, make_engine):
    fake = standin("apptainer-1.2.5", version_line="apptainer version unknown")
    ok, reason = make_engine(fake).available()
    assert not ok
    assert "--version did not give a version (no version number in 'apptainer version unknown')" in reason


def test_binary_that_fails(tmp_path):
    broken = tmp_path / "apptainer"
    broken.write_text("#!/bin/sh\necho 'FATAL: cannot read /etc/apptainer/apptainer.conf' >&2\nexit 255\n")
    broken.chmod(0o755)
    ok, reason = SingularityEngine(str(broken)).available()
    assert not ok
    assert "FATAL: cannot read /etc/apptainer/apptainer.conf" in reason


@pytest.mark.parametrize(
    ("kind", "subuid", "allowed"),
    [
        ("apptainer-1.2.5", "", True),  # 1.1+ fakes root without /etc/subuid
        ("apptainer-1.0.3", "", False),
        ("apptainer-1.0.3", f"{4321}:100000:65536\n", True),
        ("singularity-ce-3.11.4", "someone:100000:65536\n", False),
        ("singularity-ce-3.11.4", "4321:100000:65536\n", True),
        ("singularity-ce-3.11.4", "4321:100000:0\n", False),
        ("singularity-3.2.1", "4321:100000:65536\n", False),  # no --fakeroot at all
    ],
)
def test_fakeroot_allowed(standin, make_engine, kind, subuid, allowed):
    engine = make_engine(standin(kind), subuid=subuid)
    result, why = engine.fakeroot_allowed(engine.installation())
    assert result is allowed
    assert bool(why) is not allowed


def test_probe_is_cached_until_the_binary_changes(standin, make_engine):
    fake = standin("apptainer-1.2.5")
    engine = make_engine(fake)
    first = engine.installation()
    assert engine.installation() is first
    fake.path.write_text(fake.path.read_text().replace("apptainer version 1.2.5", "apptainer version 1.3.10"))
    assert engine.installation().version == (1, 3, 10)
