"""runspec: image config + run options -> OCI runtime config (Docker's rules, udocker's options)."""

from __future__ import annotations

import os

import pytest

from hpcbox import runspec
from hpcbox.errors import UsageError
from hpcbox.runspec import Caller, RunOptions

CALLER = Caller(4242, 4343, "alice", "lab", "/home/alice", "/bin/bash")


def image(**config):
    return {"architecture": "amd64", "os": "linux", "config": config}


@pytest.fixture
def container(tmp_path):
    """A container dir with a rootfs holding passwd/group like a Debian image."""
    rootfs = tmp_path / "c" / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "bin").mkdir()
    (rootfs / "bin/bash").write_text("")
    (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                       "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                                       "app:x:1000:1001:App:/srv/app:/bin/sh\n")
    (rootfs / "etc/group").write_text("root:x:0:\ndaemon:x:1:\nappgrp:x:1001:\nstaff:x:50:\n")
    return tmp_path / "c"


def build(container, img, opts, **kw):
    kw.setdefault("host_env", {"HOME": "/home/alice", "SECRET": "s", "PATH": "/host/bin"})
    kw.setdefault("caller", CALLER)
    return runspec.build(img, opts, rootfs=str(container / "rootfs"), container_dir=str(container), **kw)


# -- ENTRYPOINT / CMD ----------------------------------------------------------------------------------

@pytest.mark.parametrize("entry, cmd, command, entrypoint, expected", [
    (None, ["sh"], [], None, ["sh"]),
    (None, ["sh"], ["ls", "-l"], None, ["ls", "-l"]),
    (["/ep"], ["a", "b"], [], None, ["/ep", "a", "b"]),
    (["/ep"], ["a", "b"], ["c"], None, ["/ep", "c"]),
    (["/ep"], ["a"], [], "/other", ["/other"]),              # --entrypoint drops the image's CMD
    (["/ep"], ["a"], ["x", "y"], "/other", ["/other", "x", "y"]),
    (["/ep"], ["a"], ["ls"], "", ["ls"]),                    # --entrypoint '' clears it
    (None, "echo hi", [], None, ["/bin/sh", "-c", "echo hi"]),
])
def test_entrypoint_and_cmd(entry, cmd, command, entrypoint, expected):
    cfg = {"Entrypoint": entry, "Cmd": cmd}
    assert runspec.process_args(cfg, command, entrypoint) == expected


@pytest.mark.parametrize("cfg, entrypoint", [({}, None), ({"Entrypoint": ["/ep"], "Cmd": ["x"]}, "")])
def test_nothing_to_run_is_a_clear_error(cfg, entrypoint):
    with pytest.raises(UsageError, match=r"nothing to run.*give a command"):
        runspec.process_args(cfg, [], entrypoint)


# -- environment ---------------------------------------------------------------------------------------

def test_env_layers_in_order(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\n\nA=from-file\nB=file\nSECRET\nEMPTY=\n")
    opts = RunOptions(env=["B=opt", "C=c=d", "SECRET", "NOTSET"], env_files=[str(env_file)])
    img = {"Env": ["A=img", "PATH=/img/bin", "Z=z"]}
    env = runspec.merge_env(img, opts, {"SECRET": "hostsecret", "HOME": "/h"})
    assert env == {"A": "from-file", "PATH": "/img/bin", "Z": "z", "B": "opt", "SECRET": "hostsecret",
                   "EMPTY": "", "C": "c=d"}


def test_hostenv_passes_the_host_environment_below_the_image():
    env = runspec.merge_env({"Env": ["PATH=/img"]}, RunOptions(hostenv=True), {"PATH": "/host", "X": "1"})
    assert env == {"PATH": "/img", "X": "1"}
    env = runspec.merge_env({}, RunOptions(), {"X": "1"})
    assert env == {"PATH": runspec.DEFAULT_PATH}


def test_batch_and_mpi_variables_pass_over_the_image_and_under_the_options():
    host = {"OMPI_COMM_WORLD_RANK": "3", "PMIX_RANK": "3", "SLURM_JOB_ID": "7", "PMI_FD": "5",
            "PBS_JOBID": "9.server", "HOME": "/h", "SLURMX": "no"}
    img = {"Env": ["OMPI_MCA_btl=self", "SLURM_JOB_ID=image"]}
    env = runspec.merge_env(img, RunOptions(env=["PMIX_RANK=0"]), host)
    assert env == {"OMPI_MCA_btl": "self", "OMPI_COMM_WORLD_RANK": "3", "PMIX_RANK": "0", "SLURM_JOB_ID": "7",
                   "PMI_FD": "5", "PBS_JOBID": "9.server", "PATH": runspec.DEFAULT_PATH}
    env = runspec.merge_env(img, RunOptions(batchenv=False), host)
    assert env == {"OMPI_MCA_btl": "self", "SLURM_JOB_ID": "image", "PATH": runspec.DEFAULT_PATH}


def test_terminal_sets_term():
    assert runspec.merge_env({}, RunOptions(terminal=True), {})["TERM"] == "xterm"


@pytest.mark.parametrize("content, line", [("GOOD=1\nbad name=2\n", 2), ("=x\n", 1)])
def test_bad_env_file_names_the_line(tmp_path, content, line):
    path = tmp_path / "env"
    path.write_text(content)
    with pytest.raises(UsageError, match=f"line {line}.*NAME=value"):
        runspec.parse_env_file(str(path))


def test_missing_env_file(tmp_path):
    with pytest.raises(UsageError, match=r"cannot read env file .*--env-file"):
        runspec.parse_env_file(str(tmp_path / "nope"))


# -- workdir ---------------------------------------------------------------------------------------------

def test_workdir():
    assert runspec.workdir({}, None) == "/"
    assert runspec.workdir({"WorkingDir": "/srv/"}, None) == "/srv"
    assert runspec.workdir({"WorkingDir": "/srv"}, "/tmp") == "/tmp"
    with pytest.raises(UsageError, match="not absolute"):
        runspec.workdir({}, "rel/dir")


# -- users -------------------------------------------------------------------------------------------------

PASSWD = [line.split(":") for line in [
    "root:x:0:0:root:/root:/bin/sh", "app:x:1000:1001:App:/srv/app:/bin/sh"]]
GROUP = [line.split(":") for line in ["root:x:0:", "appgrp:x:1001:", "staff:x:50:"]]


@pytest.mark.parametrize("spec, expected", [
    ("root", (0, 0, "/root")),
    ("0", (0, 0, "/root")),
    ("app", (1000, 1001, "/srv/app")),
    ("1000", (1000, 1001, "/srv/app")),
    ("app:staff", (1000, 50, "/srv/app")),
    ("app:7", (1000, 7, "/srv/app")),
    ("5555", (5555, 0, "/")),         # unknown uid: Docker uses gid 0
    ("5555:5556", (5555, 5556, "/")),
])
def test_resolve_user(spec, expected):
    assert runspec.resolve_user(spec, PASSWD, GROUP) == expected


@pytest.mark.parametrize("spec, message", [
    ("nobody", "user 'nobody' is not in the container's /etc/passwd"),
    ("app:nogroup", "group 'nogroup' is not in the container's /etc/group"),
    (":5", "bad user"),
])
def test_resolve_user_errors(spec, message):
    with pytest.raises(UsageError, match=message):
        runspec.resolve_user(spec, PASSWD, GROUP)


def test_caller_is_added_to_the_containers_own_writable_files(container):
    before = (container / "rootfs/etc/passwd").read_text()
    cfg = build(container, image(Cmd=["sh"]), RunOptions())
    passwd = (container / "rootfs/etc/passwd").read_text()
    group = (container / "rootfs/etc/group").read_text()
    assert passwd.startswith(before)
    assert passwd.endswith("alice:x:4242:4343:alice:/home/alice:/bin/bash\n")
    assert group.endswith("lab:x:4343:\n")
    # ordinary files of the container, not binds: groupadd renames /etc/group+ over them
    assert not {"/etc/passwd", "/etc/group"} & {m["destination"] for m in cfg["mounts"]}
    assert not (container / "etc").exists()
    assert os.stat(container / "rootfs/etc/passwd").st_mode & 0o777 == 0o644
    assert cfg["process"]["user"] == {"uid": 0, "gid": 0}


@pytest.mark.parametrize(("shell", "expected"), [("/bin/bash", "/bin/bash"), ("/usr/bin/env", "/bin/sh")])
def test_caller_shell_is_looked_up_in_the_image_not_on_the_host(container, shell, expected):
    assert os.path.exists("/usr/bin/env")  # on the host, never in the image
    caller = Caller(4242, 4343, "alice", "lab", "/home/alice", shell)
    build(container, image(Cmd=["id"]), RunOptions(user="alice"), caller=caller)
    assert (container / "rootfs/etc/passwd").read_text().endswith(f":/home/alice:{expected}\n")


def test_shadow_files_get_the_caller_and_keep_their_mode(container):
    rootfs = container / "rootfs"
    (rootfs / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (rootfs / "etc/gshadow").write_text("root:*::\n")
    os.chmod(rootfs / "etc/shadow", 0o640)
    build(container, image(Cmd=["sh"]), RunOptions())
    assert (rootfs / "etc/shadow").read_text() == "root:*:19000:0:99999:7:::\nalice:!:::::::\n"
    assert (rootfs / "etc/gshadow").read_text() == "root:*::\nlab:!::\n"
    assert os.stat(rootfs / "etc/shadow").st_mode & 0o777 == 0o640


def test_files_are_rewritten_only_when_an_entry_is_missing(container):
    rootfs = container / "rootfs"
    build(container, image(Cmd=["sh"]), RunOptions())
    first = os.stat(rootfs / "etc/passwd").st_ino
    build(container, image(Cmd=["sh"]), RunOptions())
    assert os.stat(rootfs / "etc/passwd").st_ino == first
    # what the container did to the files (groupadd, useradd) stays, and the caller is not added twice
    with open(rootfs / "etc/group", "a") as handle:
        handle.write("rdma:x:101:\n")
    build(container, image(Cmd=["sh"]), RunOptions())
    assert (rootfs / "etc/group").read_text().endswith("lab:x:4343:\nrdma:x:101:\n")
    assert sorted(p.name for p in (rootfs / "etc").iterdir()) == ["group", "passwd"]


def test_symlinked_etc_is_never_written_through(container, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    rootfs = container / "rootfs"
    (rootfs / "etc/passwd").unlink()
    (rootfs / "etc/passwd").symlink_to(outside / "passwd")
    build(container, image(Cmd=["sh"]), RunOptions())
    assert (outside / "passwd").read_text() == "root:x:0:0:root:/root:/bin/sh\n"
    assert (rootfs / "etc/passwd").is_symlink()


def test_user_by_caller_name_and_shell_fallback(container):
    caller = Caller(4242, 4343, "alice", "lab", "/home/alice", "/usr/bin/zsh")  # zsh not in the image
    cfg = build(container, image(Cmd=["id"]), RunOptions(user="alice"), caller=caller)
    assert cfg["process"]["user"] == {"uid": 4242, "gid": 4343}
    assert "HOME=/home/alice" in cfg["process"]["env"]
    assert (container / "rootfs/etc/passwd").read_text().endswith(":/home/alice:/bin/sh\n")


def test_caller_already_in_image_is_not_added_twice(container):
    before = (container / "rootfs/etc/passwd").read_text()
    caller = Caller(1000, 1001, "app", "appgrp", "/home/app", "/bin/sh")
    build(container, image(Cmd=["sh"]), RunOptions(), caller=caller)
    assert (container / "rootfs/etc/passwd").read_text() == before


def test_image_without_passwd_gets_root_and_caller(tmp_path):
    rootfs = tmp_path / "c" / "rootfs"
    rootfs.mkdir(parents=True)
    cfg = runspec.build(image(Cmd=["/x"]), RunOptions(user="alice"), rootfs=str(rootfs),
                        container_dir=str(tmp_path / "c"), host_env={}, caller=CALLER)
    assert (rootfs / "etc/passwd").read_text().splitlines()[0] == "root:x:0:0:root:/root:/bin/sh"
    assert cfg["process"]["user"]["uid"] == 4242


def test_overlay_changes_go_to_the_upper_directory(tmp_path):
    lower, upper, rootfs = tmp_path / "lower", tmp_path / "upper", tmp_path / "c/rootfs"
    (lower / "etc").mkdir(parents=True)
    upper.mkdir()
    rootfs.mkdir(parents=True)
    (lower / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (lower / "etc/group").write_text("root:x:0:\n")
    runspec.build(image(Cmd=["/x"]), RunOptions(), rootfs=str(rootfs), container_dir=str(tmp_path / "c"),
                  host_env={}, caller=CALLER, view=[str(upper), str(lower)])
    assert (upper / "etc/passwd").read_text().endswith("alice:x:4242:4343:alice:/home/alice:/bin/sh\n")
    assert (lower / "etc/passwd").read_text() == "root:x:0:0:root:/root:/bin/sh\n"
    assert not list(rootfs.iterdir())


def test_image_user_is_the_default_and_u_overrides(container):
    cfg = build(container, image(Cmd=["sh"], User="app"), RunOptions())
    assert cfg["process"]["user"] == {"uid": 1000, "gid": 1001}
    assert "HOME=/srv/app" in cfg["process"]["env"]
    cfg = build(container, image(Cmd=["sh"], User="app"), RunOptions(user="root"))
    assert cfg["process"]["user"] == {"uid": 0, "gid": 0}
    assert "HOME=/root" in cfg["process"]["env"]


def test_hostauth_and_containerauth(container):
    cfg = build(container, image(Cmd=["sh"]), RunOptions(hostauth=True))
    mounts = {m["destination"]: m["source"] for m in cfg["mounts"]}
    assert mounts["/etc/passwd"] == "/etc/passwd" and mounts["/etc/group"] == "/etc/group"
    assert "alice" not in (container / "rootfs/etc/passwd").read_text()  # not added with --hostauth
    before = (container / "rootfs/etc/passwd").read_text()
    cfg = build(container, image(Cmd=["sh"]), RunOptions(containerauth=True, user="app"))
    assert "/etc/passwd" not in {m["destination"] for m in cfg["mounts"]}
    assert (container / "rootfs/etc/passwd").read_text() == before  # untouched: the caller is not added
    assert cfg["process"]["user"]["uid"] == 1000
    with pytest.raises(UsageError, match="exclude each other"):
        build(container, image(Cmd=["sh"]), RunOptions(hostauth=True, containerauth=True))


# -- mounts ------------------------------------------------------------------------------------------------

def test_parse_volume(tmp_path):
    (tmp_path / "data").mkdir()
    host = str(tmp_path / "data")
    assert runspec.parse_volume(host) == runspec.Volume(host, host, False)
    assert runspec.parse_volume(f"{host}:/mnt/") == runspec.Volume(host, "/mnt", False)
    assert runspec.parse_volume(f"{host}:/mnt:ro") == runspec.Volume(host, "/mnt", True)
    assert runspec.parse_volume(f"{host}:/mnt:rw") == runspec.Volume(host, "/mnt", False)
    assert runspec.parse_volume("data:/d", cwd=str(tmp_path)) == runspec.Volume(host, "/d", False)
    assert runspec.parse_volume(f"{host}:ro") == runspec.Volume(host, host, True)


def test_parse_volume_with_colons_in_paths(tmp_path):
    """Workflow engines bind files whose names hold colons (CWL's colon_in_paths): the split is where the
    host part exists and the rest is absolute; only a trailing :ro/:rw is a mode."""
    odd = tmp_path / "A:Gln2Cys"
    odd.mkdir()
    (tmp_path / "A").mkdir()  # a decoy: '<tmp>/A' exists, but 'Gln2Cys:/var/...' is no absolute destination
    dest = "/var/lib/cwl/stg1/A:Gln2Cys"
    assert runspec.parse_volume(f"{odd}:{dest}") == runspec.Volume(str(odd), dest, False)
    assert runspec.parse_volume(f"{odd}:{dest}:ro") == runspec.Volume(str(odd), dest, True)
    assert runspec.parse_volume(str(odd)) == runspec.Volume(str(odd), str(odd), False)
    assert runspec.parse_volume(f"{odd}:ro") == runspec.Volume(str(odd), str(odd), True)
    ends_like_a_mode = tmp_path / "x:ro"
    ends_like_a_mode.mkdir()
    assert runspec.parse_volume(str(ends_like_a_mode)) == runspec.Volume(str(ends_like_a_mode),
                                                                         str(ends_like_a_mode), False)
    data = tmp_path / "A"
    assert runspec.parse_volume(f"{data}:/mnt:rx") == runspec.Volume(str(data), "/mnt:rx", False)
    with pytest.raises(UsageError, match=f"volume source {tmp_path}/B:C does not exist"):
        runspec.parse_volume(f"{tmp_path}/B:C:/mnt/B:C")


@pytest.mark.parametrize("text, message", [
    ("{missing}:/mnt", "does not exist on this host"),
    ("{data}:rel", "not absolute"),
    (":/mnt", "bad volume"),
])
def test_parse_volume_errors(tmp_path, text, message):
    (tmp_path / "data").mkdir()
    text = text.format(missing=tmp_path / "missing", data=tmp_path / "data")
    with pytest.raises(UsageError, match=message) as info:
        runspec.parse_volume(text)
    assert "-v/--volume" in str(info.value)


def test_default_mounts_volumes_and_nosysdirs(container, tmp_path):
    (tmp_path / "data").mkdir()
    opts = RunOptions(["ls"], volumes=[f"{tmp_path / 'data'}:/data:ro"])
    cfg = build(container, image(), opts)
    dests = [m["destination"] for m in cfg["mounts"]]
    expected_host = [p for p in runspec.HOST_FILES if os.path.exists(p)]
    assert dests == [*expected_host, "/data"]
    assert cfg["mounts"][-1] == {"destination": "/data", "type": "bind", "source": str(tmp_path / "data"),
                                 "options": ["rbind", "ro"]}
    cfg = build(container, image(), RunOptions(["ls"], nosysdirs=True))
    assert cfg["mounts"] == []


def test_bindhome(container, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    caller = Caller(4242, 4343, "alice", "lab", str(home), "/bin/sh")
    cfg = build(container, image(), RunOptions(["ls"], bindhome=True, nosysdirs=True), caller=caller)
    assert cfg["mounts"][-1]["source"] == str(home) and cfg["mounts"][-1]["destination"] == str(home)
    caller = Caller(4242, 4343, "alice", "lab", str(tmp_path / "gone"), "/bin/sh")
    with pytest.raises(UsageError, match="--bindhome"):
        build(container, image(), RunOptions(["ls"], bindhome=True), caller=caller)


@pytest.mark.parametrize("text, expected", [("0", {0}), ("0-2,5", {0, 1, 2, 5}), (" 1 , 3-3", {1, 3})])
def test_parse_cpuset(text, expected):
    assert runspec.parse_cpuset(text) == expected


@pytest.mark.parametrize("text", ["", "a", "3-1", "-1", "1-"])
def test_parse_cpuset_errors(text):
    with pytest.raises(UsageError, match="--cpuset-cpus"):
        runspec.parse_cpuset(text)


# -- the whole config ---------------------------------------------------------------------------------------

def test_full_config(container):
    img = image(Entrypoint=["/docker-entrypoint.sh"], Cmd=["serve"], Env=["PATH=/usr/bin:/bin", "A=1"],
                WorkingDir="/srv")
    opts = RunOptions(["run", "--fast"], env=["B=2"], hostname="box", net="none", runtime="runc",
                      terminal=True, annotations={"org.hpcbox.x": "y"})
    cfg = build(container, img, opts)
    assert cfg["ociVersion"] == runspec.OCI_VERSION
    proc = cfg["process"]
    assert proc["args"] == ["/docker-entrypoint.sh", "run", "--fast"]
    assert proc["env"] == ["PATH=/usr/bin:/bin", "A=1", "B=2", "TERM=xterm", "HOME=/root"]
    assert proc["cwd"] == "/srv" and proc["terminal"] is True
    assert cfg["root"] == {"path": "rootfs", "readonly": False}
    assert cfg["hostname"] == "box"
    assert {"type": "network"} in cfg["linux"]["namespaces"]
    assert cfg["annotations"] == {"org.hpcbox.x": "y", "org.hpcbox.net": "none",
                                  "org.hpcbox.runc.runtime": "runc"}


def test_host_network_and_default_runtime(container):
    cfg = build(container, image(Cmd=["sh"]), RunOptions())
    assert {"type": "network"} not in cfg["linux"]["namespaces"]
    assert cfg["annotations"] == {"org.hpcbox.net": "host"}
    assert "hostname" not in cfg


@pytest.mark.parametrize("opts, message", [
    (RunOptions(["sh"], net="bridge"), "--net host or --net none"),
    (RunOptions(["sh"], runtime="docker"), "--runtime builtin, runc or crun"),
])
def test_bad_choices(container, opts, message):
    with pytest.raises(UsageError, match=message):
        build(container, image(), opts)


# -- "run as me" ---------------------------------------------------------------------------------------------

@pytest.fixture
def me(tmp_path):
    home = tmp_path / "home/alice"
    (home / "project").mkdir(parents=True)
    (tmp_path / "scratch").mkdir()
    return Caller(4242, 4343, "alice", "lab", str(home), "/bin/bash")


def test_as_me_keeps_ids_environment_home_and_cwd(container, me, tmp_path):
    scratch = str(tmp_path / "scratch")
    cfg = build(container, image(Cmd=["sh"], Env=["PATH=/usr/bin:/bin"]), RunOptions(as_me=True), caller=me,
                cwd=scratch, host_env={"OMP_NUM_THREADS": "4", "PATH": "/host/bin"})
    proc = cfg["process"]
    assert proc["user"] == {"uid": 4242, "gid": 4343}
    assert proc["cwd"] == scratch
    env = dict(e.split("=", 1) for e in proc["env"])
    assert env["OMP_NUM_THREADS"] == "4" and env["HOME"] == me.home  # the passwd entry's: no $HOME given
    assert env["PATH"] == "/usr/bin:/bin"  # the image's Env still wins over the host's
    binds = {m["destination"]: m["source"] for m in cfg["mounts"] if m["type"] == "bind"}
    assert binds[me.home] == me.home and binds[scratch] == scratch


def test_as_me_in_home_binds_home_once_and_explicit_options_win(container, me):
    project = os.path.join(me.home, "project")
    cfg = build(container, image(Cmd=["sh"]), RunOptions(as_me=True, user="0", workdir="/srv"), caller=me,
                cwd=project, host_env={})
    assert cfg["process"]["user"] == {"uid": 0, "gid": 0} and cfg["process"]["cwd"] == "/srv"
    dests = [m["destination"] for m in cfg["mounts"]]
    assert me.home in dests and project not in dests


@pytest.mark.parametrize("cwd", ["/", "/usr/lib", "/etc", "/var/tmp"])
def test_as_me_never_binds_a_system_directory_over_the_containers(container, me, cwd):
    cfg = build(container, image(Cmd=["sh"]), RunOptions(as_me=True), caller=me, cwd=cwd)
    assert cwd not in [m["destination"] for m in cfg["mounts"]]
    assert cfg["process"]["cwd"] == "/"


def test_as_me_pieces_are_reusable(me):
    opts = RunOptions(["sh"])
    runspec.keep_caller_ids(opts, me)
    assert opts.user == "4242:4343" and not opts.hostenv
    runspec.as_me(opts, me, os.path.join(me.home, "project"))
    runspec.as_me(opts, me, os.path.join(me.home, "project"))  # idempotent
    assert opts.hostenv and opts.volumes == [f"{me.home}:{me.home}"]


def test_host_cwd_prefers_the_shells_name_for_it(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    old = os.getcwd()
    os.chdir(real)
    try:
        assert runspec._host_cwd(None, {"PWD": str(tmp_path / "link")}) == str(tmp_path / "link")
        assert runspec._host_cwd(None, {"PWD": "/elsewhere"}) == str(real)
    finally:
        os.chdir(old)


def test_as_me_binds_the_hosts_home_variable(container, me, tmp_path):
    other = tmp_path / "other-home"
    other.mkdir()
    cfg = build(container, image(Cmd=["sh"]), RunOptions(as_me=True), caller=me, cwd="/",
                host_env={"HOME": str(other)})
    assert [m["destination"] for m in cfg["mounts"] if m["type"] == "bind"][-1] == str(other)
    assert f"HOME={other}" in cfg["process"]["env"]


def test_unwritable_etc_runs_without_the_callers_entry(container):
    etc = container / "rootfs/etc"
    os.chmod(etc, 0o555)
    try:
        if os.access(etc, os.W_OK):
            pytest.skip("root writes anyway")
        cfg = build(container, image(Cmd=["sh"]), RunOptions(user="app"))
        assert cfg["process"]["user"] == {"uid": 1000, "gid": 1001}
        assert "alice" not in (etc / "passwd").read_text()
    finally:
        os.chmod(etc, 0o755)
