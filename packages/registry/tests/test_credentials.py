import base64
import json
import os
import stat

import pytest

from hpcbox_registry import Credential, CredentialStore
from hpcbox_registry.errors import CredentialStoreError


def test_set_get_remove_with_mode_0600(tmp_path):
    path = tmp_path / "home" / "credentials.json"
    store = CredentialStore(path=str(path), docker_config=None)
    assert store.get("127.0.0.1:5000") is None
    store.set("127.0.0.1:5000", "alice", "s3cret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert store.get("127.0.0.1:5000") == Credential("alice", "s3cret")
    store.set("127.0.0.1:5000", "alice", "new")
    assert store.get("127.0.0.1:5000").password == "new"
    assert store.remove("127.0.0.1:5000") is True
    assert store.remove("127.0.0.1:5000") is False
    assert store.get("127.0.0.1:5000") is None


def test_write_is_atomic_and_keeps_other_entries(tmp_path):
    path = tmp_path / "credentials.json"
    store = CredentialStore(path=str(path), docker_config=None)
    store.set("a.example", "u1", "p1")
    os.chmod(path, 0o644)  # even a loosened file is rewritten 0600
    store.set("b.example", "u2", "p2")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(json.loads(path.read_text())["auths"]) == ["a.example", "b.example"]
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]  # no temp file left behind


def test_docker_hub_aliases_share_one_entry(tmp_path):
    store = CredentialStore(path=str(tmp_path / "c.json"), docker_config=None)
    store.set("https://index.docker.io/v1/", "hub", "pw")
    assert store.get("docker.io") == Credential("hub", "pw")
    assert store.get("registry-1.docker.io") == Credential("hub", "pw")


def test_docker_config_auths_are_read_but_never_written(tmp_path):
    docker = tmp_path / "config.json"
    docker.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hubuser:hub:pw").decode()},
                    "registry.example:5000": {"username": "u", "password": "p"},
                    "empty.example": {},
                },
                "credsStore": "desktop",
            }
        )
    )
    before = docker.read_bytes()
    store = CredentialStore(path=str(tmp_path / "own.json"), docker_config=str(docker))
    assert store.get("docker.io") == Credential("hubuser", "hub:pw")
    assert store.get("registry.example:5000") == Credential("u", "p")
    assert store.get("empty.example") is None
    store.set("registry.example:5000", "mine", "x")  # our own file wins
    assert store.get("registry.example:5000") == Credential("mine", "x")
    assert store.remove("docker.io") is False
    assert docker.read_bytes() == before


def test_docker_config_env(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"r.example": {"username": "e", "password": "v"}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert CredentialStore(path=str(tmp_path / "own.json")).get("r.example") == Credential("e", "v")


def test_broken_files_give_a_clear_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(CredentialStoreError) as err:
        CredentialStore(path=str(path), docker_config=None).get("x")
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    docker = tmp_path / "d.json"
    docker.write_text(json.dumps({"auths": {"x": {"auth": base64.b64encode(b"nocolon").decode()}}}))
    with pytest.raises(CredentialStoreError):
        CredentialStore(path=str(tmp_path / "none.json"), docker_config=str(docker)).get("x")


def test_repr_hides_the_password():
    assert "pw" not in repr(Credential("user", "pw"))
