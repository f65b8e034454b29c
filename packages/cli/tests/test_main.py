"""The command line: parsing, dispatch, output formats and one-line errors (registry faked)."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys

import pytest

import hpcbox
from hpcbox import settings
from hpcbox.main import build_parser, main

REG = "127.0.0.1:5000"


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hpcbox: error: ") and "; " in lines[0], err
    assert "Traceback" not in err
    return lines[0]


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hpcbox {hpcbox.__version__}"


@pytest.mark.parametrize("argv", [
    [], ["pull"], ["images"], ["inspect"], ["rmi"], ["tag"], ["login"], ["logout"], ["search"],
    ["manifest"], ["manifest", "inspect"], ["version"],
])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([*argv, "-h"])
    assert info.value.code == 0
    assert "usage: hpcbox" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["pull"], ["frobnicate"], ["rmi"], ["images", "--bogus"],
                                  ["login", "-p", "x", "--password-stdin", "r"], ["manifest"]])
def test_usage_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    _one_error_line(capsys.readouterr().err)


def test_no_command_prints_a_short_usage_and_succeeds(capsys):
    """As udocker does: scripts probe the command with no arguments."""
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: hpcbox") and "commands: pull, images" in out and err == ""
    assert main(["-q"]) == 0


def test_options_before_or_after_the_command():
    parser = build_parser()
    args = parser.parse_args(["--home", "/a", "--insecure-registry", "h1", "pull", "x"])
    assert args.home == "/a" and args.insecure_registry == ["h1"]
    args = parser.parse_args(["pull", "--home", "/b", "--ca-bundle", "/c", "x"])
    assert args.home == "/b" and args.ca_bundle == "/c" and args.insecure_registry == []
    args = parser.parse_args(["--home", "/a", "pull", "--platform", "linux/arm64", "x"])
    assert args.home == "/a" and args.platform == "linux/arm64"


def test_registry_options_from_flags_env_and_config(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    (home / "config.json").write_text(json.dumps({"insecure_registries": ["c:1"],
                                                  "mirrors": {"docker.io": "https://m0"}}))
    monkeypatch.setenv("HPCBOX_INSECURE_REGISTRIES", "e:1, e:2")
    monkeypatch.setenv("HPCBOX_CA_BUNDLE", str(ca))
    monkeypatch.setenv("HPCBOX_REGISTRY_MIRRORS", "quay.io=https://m1,https://m2")
    args = build_parser().parse_args(["--home", str(home), "--insecure-registry", "f:1", "images"])
    options = settings.registry_options(args)
    assert options["insecure_registries"] == ("f:1", "e:1", "e:2", "c:1")
    assert options["ca_bundle"] == str(ca)
    assert options["mirrors"] == {"docker.io": ("https://m0",), "quay.io": ("https://m1", "https://m2")}
    monkeypatch.setenv("HPCBOX_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(Exception, match="does not exist; give an existing PEM"):
        settings.registry_options(args)
    with pytest.raises(Exception, match="REGISTRY=URL"):
        settings.parse_mirrors("docker.io")


def test_home_defaults(monkeypatch, tmp_path):
    args = build_parser().parse_args(["images"])
    monkeypatch.setenv("HPCBOX_HOME", str(tmp_path / "h"))
    assert settings.home(args) == tmp_path / "h"
    monkeypatch.delenv("HPCBOX_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert settings.home(args) == tmp_path / ".hpcbox"


def test_empty_store_listings(cli):
    assert cli("images", "--json")[:2] == (0, "[]\n")
    code, out, _ = cli("images")
    assert code == 0 and out.split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert cli("images", "-q")[:2] == (0, "")


def test_pull_images_inspect_tag_rmi(cli, fake_registry, layers, helpers):
    image = fake_registry.add("team/app", "1", layers)
    code, out, err = cli("pull", f"{REG}/team/app:1")
    assert code == 0, err
    assert out == f"{REG}/team/app:1\n"
    lines = err.splitlines()
    assert not any("downloaded" in line for line in lines)  # no progress when stderr is not a terminal
    assert f"Digest: {image.manifest.digest}" in lines

    code, out, _ = cli("images", "--json")
    listed = json.loads(out)
    config_digest = helpers.digest_of(image.config)
    assert listed == [{
        "id": config_digest, "manifest": image.manifest.digest, "tags": [f"{REG}/team/app:1"],
        "digests": [f"{REG}/team/app@{image.manifest.digest}"],
        "size": sum(map(len, layers)) + len(image.config) + len(image.manifest.raw),
        "created": "2024-01-02T03:04:05Z", "platform": {"architecture": "amd64", "os": "linux"}}]
    code, out, _ = cli("images")
    row = out.splitlines()[1].split()
    assert row[:4] == [f"{REG}/team/app", "1", image.manifest.digest[:19], config_digest[7:19]]
    assert cli("images", "-q")[1] == config_digest[7:19] + "\n"

    code, out, _ = cli("inspect", f"{REG}/team/app:1")
    info = json.loads(out)
    assert info["Id"] == config_digest and info["Config"]["config"]["Cmd"] == ["sh"]
    assert info["Manifest"]["layers"][1]["digest"] == helpers.digest_of(layers[1])
    assert cli("inspect", "--format", "{{.Config.config.Env}} {{.Id}}", config_digest[7:17])[1] == \
        f'["PATH=/bin"] {config_digest}\n'
    code, _, err = cli("inspect", "-f", "{{.Nope}}", f"{REG}/team/app:1")
    assert code == 2 and "no field 'Nope'" in _one_error_line(err)

    assert cli("tag", f"{REG}/team/app:1", "other/name")[:2] == (0, "docker.io/other/name:latest\n")
    code, _, err = cli("rmi", config_digest[7:19])
    assert code == 1 and "-f" in _one_error_line(err)
    assert cli("rmi", "other/name")[:2] == (0, "Untagged: docker.io/other/name:latest\n")
    code, out, err = cli("rmi", f"{REG}/team/app:1")
    assert code == 0 and out == f"Untagged: {REG}/team/app:1\nDeleted: {config_digest}\n"
    assert err.startswith("Freed ")
    assert list((cli.home / "images" / "blobs" / "sha256").iterdir()) == []
    assert cli("images", "--json")[1] == "[]\n"


def test_rmi_by_id_with_force_and_multiple_args(cli, fake_registry, layers):
    fake_registry.add("team/app", "1", layers)
    assert cli("pull", "-q", f"{REG}/team/app:1")[0] == 0
    cli("tag", f"{REG}/team/app:1", f"{REG}/team/app:2")
    image_id = json.loads(cli("images", "--json")[1])[0]["id"]
    code, out, err = cli("rmi", "-f", f"{REG}/nope:1", image_id[7:15])
    assert code == 3 and "no image" in err.splitlines()[0]
    assert f"Deleted: {image_id}" in out
    assert cli("images", "--json")[1] == "[]\n"


def test_unknown_image_and_bad_reference(cli):
    code, _, err = cli("inspect", "nothere:1")
    assert code == 3 and "no image 'docker.io/library/nothere:1'" in _one_error_line(err)
    code, _, err = cli("pull", "UPPER/Case::x")
    assert code == 2
    _one_error_line(err)
    code, _, err = cli("tag", "nothere", "x")
    assert code == 3


def test_unexpected_errors_are_one_line_unless_debugging(cli, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(cli.client, "resolve", boom)
    code, _, err = cli("pull", f"{REG}/x:1")
    assert code == 1 and "kaboom second line" in _one_error_line(err)
    monkeypatch.setenv("HPCBOX_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["--home", str(cli.home), "pull", f"{REG}/x:1"])


def test_pull_platform_option(cli, fake_registry, helpers):
    amd = fake_registry.add("multi", "a", [helpers.make_layer({"f": b"amd"})[0]])
    arm = fake_registry.add("multi", "b", [helpers.make_layer({"f": b"arm"})[0]],
                            config={"os": "linux", "architecture": "arm64"})
    fake_registry.add_index("multi", "1", {"amd64": amd, "arm64": arm})
    code, _, err = cli("pull", "--platform", "linux/arm64", f"{REG}/multi:1")
    assert code == 0 and "Platform: linux/arm64" in err
    assert json.loads(cli("images", "--json")[1])[0]["manifest"] == arm.manifest.digest


def test_login_logout(cli, monkeypatch, tmp_path):
    calls = []
    cli.client.login = lambda registry, user, password: calls.append((registry, user, password))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret\n"))
    code, _, _ = cli("login", "-u", "alice", "--password-stdin", f"https://{REG}/")
    assert code == 0 and calls == [(REG, "alice", "s3cret")]
    creds = cli.home / "credentials.json"
    assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
    assert settings.credentials(build_parser().parse_args(["--home", str(cli.home), "images"])).get(REG)
    assert cli("logout", REG)[0] == 0
    code, _, err = cli("logout", REG)
    assert code == 1 and "not logged in" in _one_error_line(err)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = cli("login", "-u", "alice", REG)
    assert code == 2 and "password" in _one_error_line(err)


def test_manifest_inspect_and_search(cli, fake_registry, layers):
    image = fake_registry.add("team/app", "1", layers)
    cli.client.get_manifest = lambda ref: image.manifest

    class Result:
        name, description, stars, official = "library/alpine", "A tiny\nimage", 10, True

    cli.client.search = lambda term, limit=25: [Result()] * min(limit, 3)
    code, out, _ = cli("manifest", "inspect", f"{REG}/team/app:1")
    assert code == 0 and json.loads(out) == image.manifest.data
    code, out, _ = cli("search", "--limit", "2", "alpine")
    assert code == 0 and out.splitlines()[1].split() == ["library/alpine", "A", "tiny", "image", "10", "[OK]"]
    assert len(out.splitlines()) == 3
    assert cli("search", "--limit", "0", "x")[0] == 2


def test_version_command(cli):
    code, out, _ = cli("version", "--json")
    info = json.loads(out)
    assert code == 0 and info["hpcbox"] == hpcbox.__version__ and "hpcbox-registry" in info


def test_start_up_imports_no_heavy_module():
    code = ("import sys, hpcbox.main; heavy = [m for m in ('hpcbox_registry', 'requests', 'hpcbox.store', "
            "'json', 'hpcbox.commands.pull') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_m_hpcbox(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hpcbox", "--home", str(tmp_path), "images", "-q"],
                          capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
