"""Mount, Bundle and Binding are plain classes with __slots__ (cheaper to define than named tuples on
every `hpcbox run`), and keep what callers used of the named tuples: fields by name, construction by
position or keyword, equality by fields, hashing by fields, a repr naming the fields."""

from __future__ import annotations

import pickle

import pytest
from hpcbox_oci_bundle import MS_BIND, MS_RDONLY, Binding, Bundle, Mount, Record, parse_bundle


def test_binding_fields_equality_hash_and_repr():
    one = Binding("/work", "/scratch/me", True)
    assert (one.guest, one.host, one.readonly) == ("/work", "/scratch/me", True)
    assert one == Binding(guest="/work", host="/scratch/me", readonly=True)
    assert one != Binding("/work", "/scratch/me", False)
    assert one != ("/work", "/scratch/me", True)  # equal only to its own kind
    assert len({one, Binding("/work", "/scratch/me", True), Binding("/x", "/x", False)}) == 2
    assert repr(one) == "Binding(guest='/work', host='/scratch/me', readonly=True)"


def test_mount_positional_fields_and_flag_properties():
    mount = Mount("/data", "/d", "bind", MS_BIND | MS_RDONLY, "", ["rbind", "ro"])
    assert (mount.source, mount.destination, mount.type, mount.data, mount.options) == (
        "/data", "/d", "bind", "", ["rbind", "ro"])
    assert mount.is_bind and mount.readonly
    assert not Mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m", []).is_bind
    assert mount == Mount("/data", "/d", "bind", MS_BIND | MS_RDONLY, "", ["rbind", "ro"])
    assert repr(mount).startswith("Mount(source='/data', destination='/d', type='bind', ")
    with pytest.raises(TypeError):  # a list among the fields, as with the named tuple
        hash(mount)


def test_records_have_no_instance_dict_and_survive_pickling():
    binding = Binding("/a", "/b", False)
    assert not hasattr(binding, "__dict__")
    with pytest.raises(AttributeError):
        binding.other = 1  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(binding)) == binding


def test_parsed_bundle_equals_a_second_parse_and_names_its_fields(tmp_path):
    (tmp_path / "rootfs").mkdir()
    config = {"process": {"args": ["x"]}, "root": {"path": "rootfs"},
              "mounts": [{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]}
    spec = parse_bundle(config, bundle_dir=str(tmp_path))
    assert isinstance(spec, Bundle) and isinstance(spec, Record)
    assert spec == parse_bundle(config, bundle_dir=str(tmp_path))
    assert spec != parse_bundle({**config, "hostname": "box"}, bundle_dir=str(tmp_path))
    assert repr(spec).startswith(f"Bundle(config={config!r}, bundle_dir={str(tmp_path)!r}, ")
    assert "namespaces=[])" in repr(spec)
