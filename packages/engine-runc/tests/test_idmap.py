"""Id maps: subordinate ranges through newuidmap/newgidmap or one id, chown to unmapped ids, apt's sandbox."""

from __future__ import annotations

import os
import stat

import pytest

from hpcbox_engine_runc import idmap

IDMAP = "org.hpcbox.runc.idmap"
CHOWN = "org.hpcbox.runc.chown"


def test_subordinate_range_by_name_or_uid(tmp_path):
    path = tmp_path / "subuid"
    path.write_text("other:200000:65536\nalice:100000:0\nalice:300000:1000\n4242:400000:10\n")
    assert idmap.subordinate_range(str(path), 4242, "alice") == (300000, 1000)  # empty ranges skipped
    assert idmap.subordinate_range(str(path), 4242, None) == (400000, 10)
    assert idmap.subordinate_range(str(path), 1, "bob") is None
    assert idmap.subordinate_range(str(tmp_path / "missing"), 1, "bob") is None


@pytest.mark.parametrize("inside, sub, expected", [
    (0, (100000, 65536), [0, 1001, 1, 1, 100000, 65536]),
    (1001, (100000, 65536), [1001, 1001, 1, 0, 100000, 1001, 1002, 101001, 64535]),
    (10, (100000, 10), [10, 1001, 1, 0, 100000, 10]),
    (11, (100000, 10), None),
])
def test_map_args(inside, sub, expected):
    assert idmap.map_args(inside, 1001, sub) == expected


def test_plan_says_why_not(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    full = idmap.plan(0, 0, subuid=str(empty), subgid=str(empty))
    assert not full.possible
    assert "newuidmap" in full.reason or f"in {empty}" in full.reason


def test_apt_sandbox_file_follows_the_map(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc/apt/apt.conf.d").mkdir(parents=True)
    conf = root / "etc/apt/apt.conf.d" / idmap.APT_SANDBOX_FILE
    idmap.apt_sandbox([str(root)], str(root), single=True)
    assert 'APT::Sandbox::User "root";' in conf.read_text()
    idmap.apt_sandbox([str(root)], str(root), single=False)
    assert not conf.exists()
    conf.write_text("// the user's own\n")  # a file hpcbox did not write stays
    idmap.apt_sandbox([str(root)], str(root), single=False)
    assert conf.read_text() == "// the user's own\n"
    bare = tmp_path / "no-apt"
    bare.mkdir()
    idmap.apt_sandbox([str(bare)], str(bare), single=True)
    assert list(bare.iterdir()) == []


def test_apt_sandbox_file_of_an_overlay_goes_to_upper(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc/apt/apt.conf.d").mkdir(parents=True)
    upper.mkdir()
    idmap.apt_sandbox([str(upper), str(lower)], str(upper), single=True)
    assert (upper / "etc/apt/apt.conf.d" / idmap.APT_SANDBOX_FILE).is_file()
    assert not (lower / "etc/apt/apt.conf.d" / idmap.APT_SANDBOX_FILE).exists()


# -- real containers ----------------------------------------------------------------------------------



@pytest.mark.usefixtures("need_userns")
def test_single_map_chown_to_unmapped_ids_succeeds_and_changes_nothing(make_bundle, run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    mounts = [{"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "rw"]}]
    script = ("cat /proc/self/uid_map; touch /data/f; chown 42:42 /data/f; echo rc=$?; "
              "chown 0:0 /data/f; echo rc=$?; stat -c %u:%g /data/f")
    result = run(make_bundle(["sh", "-c", script], mounts=mounts, annotations={IDMAP: "single"}))
    lines = result.out.split("\n")
    assert lines[0].split() == ["0", str(os.getuid()), "1"]
    assert lines[1:4] == ["rc=0", "rc=0", "0:0"]
    assert os.stat(data / "f").st_uid == os.getuid()
    strict = run(make_bundle(["sh", "-c", "touch /data/g; chown 42 /data/g; echo rc=$?"], mounts=mounts,
                             annotations={IDMAP: "single", CHOWN: "strict"}))
    assert "rc=1" in strict.out  # the kernel's EINVAL, without the filter


@pytest.mark.usefixtures("need_userns")
def test_full_map_gives_real_ownership_and_remove_tree_deletes_it(make_bundle, run, tmp_path):
    full = idmap.plan(0, 0)
    if not full.possible:
        pytest.skip(f"no full id map here: {full.reason}")
    data = tmp_path / "data"
    data.mkdir()
    mounts = [{"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "rw"]}]
    script = ("cat /proc/self/uid_map | wc -l; mkdir -p /data/d/e; touch /data/d/e/f; chmod 700 /data/d; "
              "chown -R 42:42 /data/d; stat -c %u:%g /data/d/e/f; chown 99999999 /data/d/e/f; echo rc=$?; "
              "id -G")
    result = run(make_bundle(["sh", "-c", script], mounts=mounts))
    assert result.out.split() == ["2", "42:42", "rc=0", "0"], result.err
    owner = os.lstat(data / "d").st_uid
    assert owner != os.getuid() and stat.S_IMODE(os.lstat(data / "d").st_mode) == 0o700
    with pytest.raises(PermissionError):
        os.listdir(data / "d")
    # run_mapped: inside, the files read and show the container's ids; a failure is an OSError
    seen = tmp_path / "seen"
    assert idmap.run_mapped(lambda: seen.write_text(
        f"{os.stat(data / 'd/e/f').st_uid} {sorted(os.listdir(data / 'd'))}"), "looking") is None
    assert seen.read_text() == "42 ['e']"
    with pytest.raises(OSError, match=r"^looking in the user namespace .*failed: .*No such file"):
        idmap.run_mapped(lambda: os.listdir(data / "missing"), "looking")
    assert idmap.remove_tree(str(data / "d")) is None
    assert not (data / "d").exists()


def _helper_script(path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def _apt_rootfs(rootfs, tmp_path):
    """A copy of the busybox rootfs with /etc/apt/apt.conf.d (apt's setting is written where apt is)."""
    import shutil

    root = tmp_path / "apt-rootfs"
    shutil.copytree(rootfs, root, symlinks=True)
    (root / "etc/apt/apt.conf.d").mkdir(parents=True)
    return root


@pytest.mark.usefixtures("need_userns")
def test_runner_maps_one_id_and_writes_apts_setting_when_the_helpers_fail(make_bundle, run, rootfs, tmp_path,
                                                                          monkeypatch):
    """The runner runs newuidmap/newgidmap itself; where both refuse, it maps the caller's one id and
    writes apt's setting, as the caller's own fallback does."""
    failing = _helper_script(tmp_path / "refuse", "echo refused >&2; exit 1")
    uid, gid = os.getuid(), os.getgid()
    monkeypatch.setattr(idmap, "plan", lambda inside_uid, inside_gid: idmap.FullMap(
        [0, uid, 1, 1, 100000, 10], [0, gid, 1, 1, 100000, 10], "test", (failing, failing)))
    root = _apt_rootfs(rootfs, tmp_path)
    result = run(make_bundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"],
                             root={"path": str(root), "readonly": False}))
    assert result.code == 0, result
    assert [line.split() for line in result.out.splitlines()] == [["0", str(uid), "1"], ["0", str(gid), "1"],
                                                                  ["0"]]
    assert "refused" not in result.err  # the helpers' complaints are not the container's output
    conf = root / "etc/apt/apt.conf.d" / idmap.APT_SANDBOX_FILE
    assert conf.read_text() == idmap.APT_SANDBOX_TEXT
    assert os.stat(conf).st_uid == uid
    assert sorted(os.listdir(conf.parent)) == [idmap.APT_SANDBOX_FILE]  # no temporary file left


@pytest.mark.usefixtures("need_userns")
def test_runner_writes_no_apt_setting_through_a_planted_link(make_bundle, run, rootfs, tmp_path, monkeypatch):
    failing = _helper_script(tmp_path / "refuse", "exit 1")
    uid, gid = os.getuid(), os.getgid()
    monkeypatch.setattr(idmap, "plan", lambda inside_uid, inside_gid: idmap.FullMap(
        [0, uid, 1], [0, gid, 1], "test", (failing, failing)))
    root = _apt_rootfs(rootfs, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "etc/apt/apt.conf.d").rmdir()
    (root / "etc/apt/apt.conf.d").symlink_to(outside)
    (root / "etc/apt/real").mkdir()  # (a directory of apt's for _has_apt: the link is what is written to)
    monkeypatch.setattr(idmap, "_has_apt", lambda roots: True)
    result = run(make_bundle(["sh", "-c", "cat /proc/self/uid_map"],
                             root={"path": str(root), "readonly": False}))
    assert result.code == 0 and result.out.split() == ["0", str(uid), "1"], result
    assert list(outside.iterdir()) == []  # nothing written through the link, as apt_sandbox() does


@pytest.mark.usefixtures("need_userns")
def test_runner_keeps_the_map_a_helper_wrote_when_the_other_fails(make_bundle, run, rootfs, tmp_path,
                                                                  monkeypatch):
    full = idmap.plan(0, 0)
    if not full.possible:
        pytest.skip(f"no full id map here: {full.reason}")
    failing = _helper_script(tmp_path / "refuse", "exit 1")
    monkeypatch.setattr(idmap, "plan", lambda inside_uid, inside_gid: idmap.FullMap(
        full.uid_args, full.gid_args, full.reason, (full.helpers[0], failing)))
    root = _apt_rootfs(rootfs, tmp_path)
    result = run(make_bundle(["sh", "-c", "wc -l < /proc/self/uid_map; cat /proc/self/gid_map"],
                             root={"path": str(root), "readonly": False}))
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0].strip() == "2"  # newuidmap's full range
    assert lines[1].split() == ["0", str(os.getgid()), "1"]  # one gid, written by the runner
    assert (root / "etc/apt/apt.conf.d" / idmap.APT_SANDBOX_FILE).read_text() == idmap.APT_SANDBOX_TEXT


@pytest.mark.usefixtures("need_userns")
def test_full_map_removes_apts_setting(make_bundle, run, rootfs, tmp_path):
    full = idmap.plan(0, 0)
    if not full.possible:
        pytest.skip(f"no full id map here: {full.reason}")
    root = _apt_rootfs(rootfs, tmp_path)
    conf = root / "etc/apt/apt.conf.d" / idmap.APT_SANDBOX_FILE
    conf.write_text(idmap.APT_SANDBOX_TEXT)
    result = run(make_bundle(["sh", "-c", "wc -l < /proc/self/uid_map"],
                             root={"path": str(root), "readonly": False}))
    assert result.code == 0 and result.out.strip() == "2", result
    assert not conf.exists()
