"""parse_bundle: every field checked, bad input refused with one line naming the problem and the fix."""

from __future__ import annotations

import json

import pytest
from hpcbox_oci_bundle import MS_BIND, MS_RDONLY, MS_REC, BundleError, parse_bundle, parse_mount_options


def _bundle(tmp_path, **change):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = {"process": {"args": ["/bin/true"]}, "root": {"path": "rootfs"}}
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_a_full_config_is_read_and_made_absolute(tmp_path):
    (tmp_path / "data").mkdir()
    bundle = _bundle(
        tmp_path,
        process={"args": ["sh", "-c", "x"], "env": ["A=1", "B=x=y"], "cwd": "/srv/../work//",
                 "user": {"uid": 1000, "gid": 100}, "terminal": True, "noNewPrivileges": True},
        hostname="box",
        root={"path": "rootfs", "readonly": True},
        mounts=[{"destination": "/data/", "type": "bind", "source": "data", "options": ["rbind", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["size=1m", "nosuid"]}],
        annotations={"org.example.a": "b"},
        linux={"namespaces": [{"type": "pid"}, {"type": "network"}]},
    )
    spec = parse_bundle(bundle)
    assert spec.rootfs == str((tmp_path / "rootfs").resolve())
    assert spec.bundle_dir == str(tmp_path)
    assert spec.args == ["sh", "-c", "x"]
    assert spec.env == {"A": "1", "B": "x=y"}
    assert (spec.cwd, spec.uid, spec.gid) == ("/work", 1000, 100)
    assert spec.terminal and spec.no_new_privs and spec.readonly and spec.hostname == "box"
    data, tmp = spec.mounts
    assert data.source == str(tmp_path / "data") and data.destination == "/data"
    assert data.is_bind and data.readonly and data.flags == MS_BIND | MS_REC | MS_RDONLY
    assert not tmp.is_bind and tmp.type == "tmpfs" and tmp.data == "size=1m"
    assert spec.annotations == {"org.example.a": "b"}
    assert [n["type"] for n in spec.namespaces] == ["pid", "network"]


def test_an_rbind_type_is_a_bind_and_its_relative_source_is_normalised(tmp_path):
    (tmp_path / "data").mkdir()
    mount = {"destination": "/d", "type": "rbind", "source": "./x/../data"}
    spec = parse_bundle(_bundle(tmp_path, mounts=[mount]))
    assert spec.mounts[0].is_bind and spec.mounts[0].source == str(tmp_path / "data")


def test_a_dict_config_is_relative_to_the_given_bundle_dir(tmp_path):
    (tmp_path / "rootfs").mkdir()
    spec = parse_bundle({"process": {"args": ["x"]}, "root": {"path": "rootfs"}}, bundle_dir=str(tmp_path))
    assert spec.rootfs == str(tmp_path / "rootfs")
    assert (spec.cwd, spec.uid, spec.gid, spec.mounts, spec.annotations) == ("/", 0, 0, [], {})


def test_a_config_json_path_works_like_its_directory(tmp_path):
    bundle = _bundle(tmp_path)
    assert parse_bundle(bundle / "config.json") == parse_bundle(bundle)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"process": None}, "the config has no process object"),
        ({"process": {"args": []}}, "process.args is"),
        ({"process": {"args": ["x", 1]}}, "process.args is"),
        ({"process": {"args": [""]}}, "process.args is"),
        ({"process": {"args": ["x"], "env": "A=b"}}, "process.env is not a list"),
        ({"process": {"args": ["x"], "env": ["=b"]}}, "process.env entry '=b' is malformed"),
        ({"process": {"args": ["x"], "env": ["NOEQUALS"]}}, "process.env entry 'NOEQUALS' is malformed"),
        ({"process": {"args": ["x"], "cwd": "relative"}}, "process.cwd is 'relative'"),
        ({"process": {"args": ["x"], "user": {"uid": -1}}}, "process.user.uid is -1"),
        ({"process": {"args": ["x"], "user": {"gid": True}}}, "process.user.gid is True"),
        ({"root": {"path": "missing-rootfs"}}, "root.path .*missing-rootfs is not a directory"),
        ({"root": {}}, "root.path is missing"),
        ({"annotations": {"a": 1}}, "annotations is not an object of strings"),
        ({"linux": {"namespaces": ["pid"]}}, "linux.namespaces is not a list of objects"),
        ({"hostname": "x" * 65}, "hostname .* is invalid"),
        ({"mounts": {"a": 1}}, "mounts is not a list"),
        ({"mounts": ["x"]}, "mounts\\[0\\] is not an object"),
        ({"mounts": [{"destination": "rel", "type": "bind", "source": "/"}]}, "mounts\\[0\\].destination"),
        ({"mounts": [{"destination": "/x", "type": "bind", "source": "/no/such/dir"}]},
         "bind source /no/such/dir does not exist"),
        ({"mounts": [{"destination": "/x", "options": "ro"}]}, "mounts\\[0\\].options is not a list"),
        ({"mounts": [{"destination": "/x", "options": [1]}]}, "mounts\\[0\\] option 1 is not a string"),
        ({"mounts": [{"destination": "/x"}]}, "mounts\\[0\\] \\(/x\\) has no type"),
    ],
)
def test_bad_bundles_are_refused_with_the_fix(tmp_path, change, message):
    with pytest.raises(BundleError, match=message) as caught:
        parse_bundle(_bundle(tmp_path, **change))
    text = str(caught.value)
    assert "\n" not in text and ": " in text


def test_missing_and_unreadable_configs(tmp_path):
    with pytest.raises(BundleError, match=r"no OCI runtime config at .*config.json: give a bundle directory"):
        parse_bundle(tmp_path)
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(BundleError, match=r"cannot read .*write a valid JSON OCI runtime config"):
        parse_bundle(tmp_path)
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(BundleError, match="is not a JSON object"):
        parse_bundle(tmp_path)


def test_mount_options_set_and_clear_flags_and_keep_the_rest_as_data():
    options = ["ro", "rw", "nosuid", "private", "mode=755", "size=1m"]
    assert parse_mount_options(options) == (2, "mode=755,size=1m")
    assert parse_mount_options(["bind", "ro"]) == (MS_BIND | MS_RDONLY, "")
