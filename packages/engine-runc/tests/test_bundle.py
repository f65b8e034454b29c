"""Bundle parsing: bad input gives one clear line naming the problem and the fix."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest

import hpcbox_engine_runc
from hpcbox_engine_runc import BundleError, engine, parse_bundle, resolve_in_root, runner_argv


def _config(rootfs, **process):
    return {"process": {"args": ["/bin/true"], **process}, "root": {"path": str(rootfs)}}


def test_entry_point_is_registered():
    eps = entry_points()
    group = eps.select(group="hpcbox.engines") if hasattr(eps, "select") else eps.get("hpcbox.engines", [])
    found = {ep.name: ep for ep in group}
    assert "runc" in found
    loaded = found["runc"].load()
    assert loaded is hpcbox_engine_runc.engine
    assert loaded.name == "runc"


def test_missing_config_names_the_path(tmp_path):
    with pytest.raises(BundleError, match=r"no OCI runtime config at .*config.json: give a bundle directory"):
        engine.run(tmp_path)


def test_invalid_json(tmp_path):
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(BundleError, match=r"cannot read .*write a valid JSON OCI runtime config"):
        parse_bundle(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"process": {"args": []}}, "process.args is"),
        ({"process": {"args": ["x"], "env": ["NOEQUALS"]}}, "process.env entry 'NOEQUALS' is malformed"),
        ({"process": {"args": ["x"], "cwd": "relative"}}, "process.cwd is 'relative'"),
        ({"process": {"args": ["x"], "user": {"uid": -1}}}, "process.user.uid is -1"),
        ({"root": {"path": "missing-rootfs"}}, "root.path .*missing-rootfs is not a directory"),
        ({"annotations": {"org.hpcbox.runc.runtime": "docker"}},
         "runtime='docker' is unknown: use one of"),
        ({"annotations": {"org.hpcbox.net": "bridge"}}, "'bridge' is unknown: use 'host' or 'none'"),
        ({"mounts": [{"destination": "rel", "type": "bind", "source": "/"}]}, "mounts\\[0\\].destination"),
        ({"mounts": [{"destination": "/x", "type": "bind", "source": "/no/such/dir"}]},
         "bind source /no/such/dir does not exist"),
        ({"linux": {"namespaces": [{"type": "network", "path": "/proc/1/ns/net"}]}},
         "joining an existing network namespace"),
        ({"annotations": {"org.hpcbox.runc.overlay.lower": "/tmp"}}, "needs org.hpcbox.runc.overlay.upper"),
    ],
)
def test_bad_bundles_are_refused_with_the_fix(tmp_path, change, message):
    (tmp_path / "rootfs").mkdir()
    config = {"process": {"args": ["/bin/true"]}, "root": {"path": "rootfs"}}
    config.update(change)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match=message) as caught:
        parse_bundle(tmp_path)
    assert "\n" not in str(caught.value)
    assert ": " in str(caught.value)


def test_relative_root_path_is_relative_to_the_bundle(tmp_path):
    (tmp_path / "rootfs").mkdir()
    config = {"process": {"args": ["x"]}, "root": {"path": "rootfs"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert parse_bundle(tmp_path).rootfs == str((tmp_path / "rootfs").resolve())
    assert parse_bundle(tmp_path / "config.json").rootfs == str((tmp_path / "rootfs").resolve())


def test_network_namespace_in_the_config_means_no_network(tmp_path):
    config = _config(tmp_path, env=["A=b"])
    assert parse_bundle(config).net == "host"
    config["linux"] = {"namespaces": [{"type": "network"}]}
    assert parse_bundle(config).net == "none"
    config["annotations"] = {"org.hpcbox.net": "host"}
    assert parse_bundle(config).net == "host"


def test_the_bundle_keeps_its_named_tuple_api(tmp_path):
    """A plain class now (cheaper to define on every `hpcbox run`): the fields by name, positional
    construction with the same trailing defaults, equality by fields and a repr naming them."""
    from hpcbox_engine_runc import Bundle

    spec = parse_bundle(_config(tmp_path))
    again = Bundle(spec.config, spec.bundle_dir, spec.rootfs, spec.args, spec.env, spec.cwd, spec.uid,
                   spec.gid, spec.readonly, spec.hostname, spec.terminal, spec.no_new_privs, spec.runtime,
                   spec.net, spec.mounts)
    assert (again.overlay, again.host_pid, again.host_ipc, again.share_userns, again.idmap, again.chown) == (
        None, False, False, None, "auto", "fake")
    assert again == spec
    assert parse_bundle({**_config(tmp_path), "annotations": {"org.hpcbox.runc.idmap": "single"}}) != spec
    assert repr(spec).endswith("share_userns=None, idmap='auto', chown='fake')")
    assert not hasattr(spec, "__dict__")


def test_mount_options_become_flags_and_data(tmp_path):
    config = _config(tmp_path)
    config["mounts"] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "size=1m", "mode=700"]},
        {"destination": "/v", "type": "bind", "source": str(tmp_path),
         "options": ["rbind", "ro", "rprivate"]},
    ]
    argv = runner_argv(parse_bundle(config), runner="/r")
    mounts = [argv[i + 1:i + 6] for i, a in enumerate(argv) if a == "--mount"]
    assert mounts == [
        ["tmpfs", str(tmp_path) + "/t", "tmpfs", "2", "size=1m,mode=700"],
        [str(tmp_path), str(tmp_path) + "/v", "bind", str(4096 | 16384 | 1), ""],
    ]
    assert argv[-2:] == ["--", "/bin/true"]


def test_resolve_in_root_follows_links_without_leaving_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "real" / "deep").mkdir(parents=True)
    (root / "abs").symlink_to("/real")
    (root / "rel").symlink_to("real/deep")
    (root / "up").symlink_to("../../../../..")
    (root / "loop").symlink_to("loop")
    assert resolve_in_root(str(root), "/abs/deep/x") == f"{root}/real/deep/x"
    assert resolve_in_root(str(root), "/rel/../x") == f"{root}/real/x"
    assert resolve_in_root(str(root), "/up/etc/passwd") == f"{root}/etc/passwd"
    assert resolve_in_root(str(root), "/../../etc") == f"{root}/etc"
    with pytest.raises(BundleError, match="too many symlinks"):
        resolve_in_root(str(root), "/loop/x")
