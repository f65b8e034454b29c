"""The engine object on a small rootfs made of the host's own dynamic programs (no image needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hpcbox_engine_preload import EngineError, engine
from hpcbox_engine_preload._engine import glibc_library_path, musl_library_path

HOST_PROGRAMS = ("sh", "cat", "ls", "pwd", "readlink", "env", "touch", "sleep", "cp", "rm")


def copy_with_libraries(program: str, root: Path) -> None:
    """Copy a host program and the libraries ldd lists (and their loader) into root at the same paths."""
    path = shutil.which(program, path="/usr/bin:/bin")
    if path is None:
        pytest.skip(f"the host has no {program}")
    files = {os.path.realpath(path): path}
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    for line in ldd.split("\n"):
        words = [w for w in line.split() if w.startswith("/")]
        for word in words:
            files[os.path.realpath(word)] = word
    for real, shown in files.items():
        for target in {shown, real}:
            dest = root / target.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                shutil.copy2(real, dest)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory) -> Path:
    if not shutil.which("ldd"):
        pytest.skip("ldd is not installed")
    root = tmp_path_factory.mktemp("preload-rootfs")
    for program in HOST_PROGRAMS:
        copy_with_libraries(program, root)
    for d in ("etc", "tmp", "work"):
        (root / d).mkdir(exist_ok=True)
    (root / "etc/motd").write_text("from the rootfs\n")
    sh = shutil.which("sh", path="/usr/bin:/bin")
    (root / "usr/bin/script").write_text(f"#!{sh} -e\necho script \"$0\" \"$@\"\n")
    (root / "usr/bin/script").chmod(0o755)
    return root


def config(root: Path, *args: str, **extra) -> dict:
    process = {"args": list(args), "cwd": extra.pop("cwd", "/"), "env": ["PATH=/usr/bin:/bin"],
               "user": {"uid": os.getuid(), "gid": os.getgid()}}
    return {"ociVersion": "1.0.2", "process": process, "root": {"path": str(root)},
            "mounts": extra.pop("mounts", []), "annotations": extra.pop("annotations", {}), **extra}


def run(root, *args, **extra):
    out = Path(root).parent / f"out-{os.getpid()}"
    with open(out, "w+") as stdout, open(str(out) + ".err", "w+") as stderr:
        code = engine.run(config(root, *args, **extra), stdout=stdout, stderr=stderr, forward_signals=False)
        stdout.seek(0)
        stderr.seek(0)
        return code, stdout.read(), stderr.read()


def test_available():
    ok, reason = engine.available()
    assert ok, reason
    assert engine.name == "preload"


def test_runs_a_program_of_the_rootfs_with_its_cwd(rootfs):
    code, out, err = run(rootfs, "sh", "-c", "pwd; cat motd; readlink /proc/self/exe; exit 7", cwd="/etc")
    assert code == 7, err
    assert out.splitlines() == ["/etc", "from the rootfs", os.path.realpath(shutil.which("readlink"))]


def test_another_process_exe_names_its_program(rootfs):
    # what its code is mapped from tells (its loader is what the kernel's link names); comm is set
    # last at start, so once it reads "nap" the process is set up. Deleted since: " (deleted)", as
    # natively.
    script = ('cp /usr/bin/sleep /tmp/nap; /tmp/nap 30 & p=$!; i=0; '
              'while [ "$(cat /proc/$p/comm)" != nap ] && [ $i -lt 20000 ]; do i=$((i+1)); done; '
              'readlink /proc/$p/exe; rm /tmp/nap; readlink /proc/$p/exe; kill $p; readlink /proc/$$/exe')
    code, out, err = run(rootfs, "sh", "-c", script)
    assert code == 0, err
    sh = shutil.which("sh", path="/usr/bin:/bin")  # a copy of its own in this rootfs, not a link
    assert out.splitlines() == ["/tmp/nap", "/tmp/nap (deleted)", sh], err


def test_scripts_argv0_and_env(rootfs):
    code, out, err = run(rootfs, "script", "a", "b")
    assert (code, out) == (0, "script /usr/bin/script a b\n"), err
    code, out, _ = run(rootfs, "env", "-i", "/usr/bin/script", "c")  # a cleared environment keeps the setup
    assert (code, out) == (0, "script /usr/bin/script c\n")


def test_exit_statuses_and_signals(rootfs):
    assert run(rootfs, "/no/such")[0] == 127
    assert run(rootfs, "/etc/motd")[0] == 126
    assert run(rootfs, "sh", "-c", "kill -TERM $$")[0] == 128 + 15


def test_a_shell_that_vforks_keeps_no_memory_of_its_commands(rootfs):
    """dash (the host's sh here) runs each command in a vfork child, which shares the shell's memory
    until it execs: what the exec plan allocated there (~50 KiB) used to stay in the shell for good
    (2000 commands: 100 MB). Each thread's next exec now frees what its vfork children exec'd with."""
    script = ("data() { while read -r key value rest; do [ \"$key\" = VmData: ] && echo \"$value\"; done "
              "< /proc/$$/status; }; first=$(data); i=0; "
              "while [ $i -lt 300 ]; do cat /etc/motd >/dev/null; i=$((i+1)); done; echo $first $(data)")
    code, out, err = run(rootfs, "sh", "-c", script)
    assert code == 0, err
    first, last = (int(kb) for kb in out.split())
    assert last - first < 2000, f"the shell grew from {first} to {last} kB over 300 commands"


def _ptrace_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("hpcbox_engine_ptrace") is not None


def _static_busybox(rootfs) -> None:
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        pytest.skip("no static busybox on this host")
    shutil.copy2(busybox, rootfs / "usr/bin/busybox")


@pytest.mark.skipif(not _ptrace_installed(), reason="hpcbox-engine-ptrace is not installed beside preload")
def test_static_programs_run_under_the_ptrace_tracer(rootfs):
    _static_busybox(rootfs)
    # the entry program, and one started by a dynamic program: same rootfs, cwd and ids
    code, out, err = run(rootfs, "/usr/bin/busybox", "sh", "-c", "cat /etc/motd; pwd; id -u", cwd="/etc")
    assert (code, out) == (0, f"from the rootfs\n/etc\n{os.getuid()}\n"), err
    code, out, err = run(rootfs, "sh", "-c", "cd /work && /usr/bin/busybox pwd && echo $?")
    assert (code, out) == (0, "/work\n0\n"), err


def test_static_program_without_the_tracer_is_refused_with_the_fix(rootfs, monkeypatch):
    from hpcbox_engine_preload import _engine

    _static_busybox(rootfs)
    monkeypatch.setattr(_engine, "ptrace_prefix", lambda spec, bindings: [])
    code, out, err = run(rootfs, "/usr/bin/busybox", "true")
    assert code == 125 and out == ""
    assert "statically linked" in err and "hpcbox-engine-ptrace" in err and "--engine runc" in err


def test_volumes_and_read_only(rootfs, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    mounts = [{"destination": "/work", "type": "bind", "source": str(rw), "options": ["rbind"]},
              {"destination": "/ro", "type": "bind", "source": str(ro), "options": ["rbind", "ro"]}]
    code, out, err = run(rootfs, "sh", "-c", "echo x > out; touch /ro/y || echo refused; pwd",
                         cwd="/work", mounts=mounts)
    assert code == 0, err
    assert out.splitlines() == ["refused", "/work"]
    assert (rw / "out").read_text() == "x\n" and not (ro / "y").exists()


def test_what_it_cannot_do_is_an_engine_error(rootfs):
    with pytest.raises(EngineError, match="network namespace"):
        run(rootfs, "true", annotations={"org.hpcbox.net": "none"})
    with pytest.raises(EngineError, match="mount namespace"):
        run(rootfs, "true", mounts=[{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}])
    with pytest.raises(EngineError, match="F1, F2, F3, F4"):
        run(rootfs, "true", annotations={"org.hpcbox.preload.mode": "F9"})


def test_ids_of_the_config_and_hostname(rootfs):
    for program in ("id", "hostname", "chown"):
        copy_with_libraries(program, rootfs)
    code, out, err = run(rootfs, "sh", "-c", "id -u; hostname", hostname="box7")
    assert code == 0, err
    assert out.splitlines() == [str(os.getuid()), "box7"]
    cfg = config(rootfs, "sh", "-c", "id -u; id -g; touch f; chown 0:0 f && echo chowned", cwd="/tmp")
    cfg["process"]["user"] = {"uid": 0, "gid": 0}  # root in the config: reported, chown succeeds
    with open(rootfs.parent / "id-out", "w+") as stdout:
        assert engine.run(cfg, stdout=stdout, forward_signals=False) == 0
        stdout.seek(0)
        assert stdout.read().splitlines() == ["0", "0", "chowned"]


def test_library_paths_follow_the_containers_configuration(tmp_path):
    root = tmp_path / "r"
    (root / "etc/ld.so.conf.d").mkdir(parents=True)
    (root / "etc/ld.so.conf").write_text("# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/lib\n")
    (root / "etc/ld.so.conf.d/a.conf").write_text("/usr/local/lib\n")
    (root / "etc/ld.so.conf.d/ignored.txt").write_text("/nope\n")
    for d, library in (("opt/lib", "libfoo.so"), ("usr/local/lib", "libbar.so.1"), ("usr/lib", "libc.so.6"),
                       ("lib", "")):
        (root / d).mkdir(parents=True)
        if library:
            (root / d / library).write_text("")
    (root / "lib64").symlink_to("lib")
    got = glibc_library_path(str(root)).split(":")
    real = os.path.realpath(root)
    # the C library's directory first (every lookup starts there); empty ones are left out
    assert got == [f"{real}/usr/lib", f"{real}/usr/local/lib", f"{real}/opt/lib"]
    (root / f"etc/ld-musl-{os.uname().machine}.path").write_text("/usr/local/lib\n/lib\n")
    (root / f"lib/ld-musl-{os.uname().machine}.so.1").write_text("")
    assert musl_library_path(str(root)).split(":") == [f"{real}/lib", f"{real}/usr/local/lib"]


def test_a_stale_loader_hint_is_looked_up_again(rootfs):
    from hpcbox_engine_preload import launcher_path
    from hpcbox_engine_preload._engine import preload_environment

    env = preload_environment(engine.parse(config(rootfs, "true")))
    assert env["HPCBOX_PRELOAD_LOADERS"]  # the engine resolved the rootfs's loader once
    guest = env["HPCBOX_PRELOAD_LOADERS"].split("=")[0]
    env["HPCBOX_PRELOAD_LOADERS"] = f"{guest}={rootfs}/gone/ld.so"
    proc = subprocess.run([str(launcher_path()), "/", "cat", "/etc/motd"], env=env, capture_output=True,
                          text=True, check=False)
    assert (proc.returncode, proc.stdout) == (0, "from the rootfs\n"), proc.stderr


def test_a_run_with_the_callers_streams_imports_little(rootfs, tmp_path):
    """`hpcbox run --engine preload` hands the engine no streams: the launcher is started by
    hpcbox_oci_bundle.spawn, and neither subprocess, pathlib, typing nor the cffi core is imported on
    the way (each costs milliseconds of every start); the program's output and status arrive."""
    bundle = tmp_path / "config.json"
    bundle.write_text(__import__("json").dumps(config(rootfs, "sh", "-c", "cat /etc/motd; exit 3")))
    code = f"""
import sys
from hpcbox_oci_bundle import spawn
real, seen = spawn._fork_exec, {{}}
def fork_exec(argv, env, close):
    seen["modules"] = set(sys.modules)
    return real(argv, env, close)
spawn._fork_exec = fork_exec
from hpcbox_engine_preload import engine
status = engine.run({str(bundle)!r}, forward_signals=False)
heavy = {{"subprocess", "pathlib", "typing", "hpcbox_engine_preload._core", "_cffi_backend"}}
print(status, sorted(heavy & seen.get("modules", {{"not-spawned"}})), file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout == "from the rootfs\n", done.stderr
    assert done.stderr.splitlines()[-1] == "3 []", done.stderr


def _glibc_at_least(major: int, minor: int) -> bool:
    name, _, version = os.confstr("CS_GNU_LIBC_VERSION").partition(" ")
    return name == "glibc" and tuple(int(x) for x in version.split(".")[:2]) >= (major, minor)


@pytest.mark.skipif(os.uname().machine != "x86_64" or not _glibc_at_least(2, 33),
                    reason="glibc-hwcaps subdirectories named x86-64-v2: glibc >= 2.33 on x86_64")
def test_glibc_hwcaps_subdirectories_are_masked_only_where_there_are_none(tmp_path):
    """The loader's probes of glibc-hwcaps subdirectories are skipped (--glibc-hwcaps-mask) only
    when the container has no such subdirectory: a library placed in one is still loaded."""
    from hpcbox_engine_preload import launcher_path
    from hpcbox_engine_preload._engine import preload_environment

    if "sse4_2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("this CPU is not x86-64-v2")
    root = tmp_path / "r"
    copy_with_libraries("cat", root)
    masked = preload_environment(engine.parse(config(root, "true")))
    assert masked["HPCBOX_PRELOAD_LOADERS"].startswith(("+/", "+~/")), masked["HPCBOX_PRELOAD_LOADERS"]
    libdir = Path(masked["HPCBOX_PRELOAD_LIBPATH"].split(":")[0])  # where the loader finds libc first
    hwcaps = libdir / "glibc-hwcaps" / "x86-64-v2"
    hwcaps.mkdir(parents=True)
    shutil.copy2(libdir / "libc.so.6", hwcaps / "libc.so.6")
    # the engine's earlier word (none there): the library masks them, so the loader takes the base copy
    proc = subprocess.run([str(launcher_path()), "/", "cat", "/proc/self/maps"], env=masked,
                          capture_output=True, text=True, check=False)
    maps = proc.stdout
    assert proc.returncode == 0 and "/libc.so.6\n" in maps and "glibc-hwcaps" not in maps, maps + proc.stderr
    # looked at again: not masked, and the loader takes the subdirectory's copy, as natively
    env = preload_environment(engine.parse(config(root, "true")))
    assert not env["HPCBOX_PRELOAD_LOADERS"].startswith("+"), env["HPCBOX_PRELOAD_LOADERS"]
    code, out, err = run(root, "cat", "/proc/self/maps")
    assert code == 0 and "/glibc-hwcaps/x86-64-v2/libc.so.6\n" in out, out + err


def _launch(env: dict, *command: str, timeout: int = 60) -> subprocess.CompletedProcess:
    from hpcbox_engine_preload import launcher_path

    return subprocess.run([str(launcher_path()), "/", *command], env=env, capture_output=True, text=True,
                          check=False, timeout=timeout)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the x86_64 glibc loader's older library search")
def test_the_older_library_subdirectories_are_masked_only_where_there_are_none(tmp_path):
    """Where no library directory has a subdirectory of glibc < 2.37's older search (x86_64, tls...),
    the loader runs with LD_HWCAP_MASK=0 and probes fewer of them; the programs never see the
    variable (environ, /proc/PID/environ), a mask of the program's own is kept, and with such a
    subdirectory there nothing is masked."""
    from hpcbox_engine_preload._engine import preload_environment

    root = tmp_path / "r"
    for program in ("sh", "env", "cat"):
        copy_with_libraries(program, root)
    env = preload_environment(engine.parse(config(root, "true")))
    assert "~/lib64/ld-linux-x86-64.so.2=" in env["HPCBOX_PRELOAD_LOADERS"], env["HPCBOX_PRELOAD_LOADERS"]
    proc = _launch(env, "sh", "-c", "env; echo --; cat /proc/$$/environ; echo; LD_HWCAP_MASK=7 env")
    seen, own = proc.stdout.split("--\n")[0], proc.stdout.split("--\n")[1]
    assert proc.returncode == 0 and "PATH=" in seen, proc.stdout + proc.stderr
    assert "LD_HWCAP_MASK" not in seen and "HPCBOX_PRELOAD" not in seen, seen
    environ, mine = own.split("\n", 1)
    assert "PATH=" in environ and "LD_HWCAP_MASK" not in environ, environ
    assert "LD_HWCAP_MASK=7\n" in mine and "HPCBOX_PRELOAD" not in mine, mine
    if not _glibc_at_least(2, 37):  # the older search exists: the loader's own account of it
        traced = _launch({**env, "LD_DEBUG": "libs"}, "cat", "/etc/hostname")
        assert "search path=" in traced.stderr and "/x86_64/x86_64" not in traced.stderr, traced.stderr
        unmarked = {**env, "HPCBOX_PRELOAD_LOADERS": env["HPCBOX_PRELOAD_LOADERS"].replace("~", "")}
        traced = _launch({**unmarked, "LD_DEBUG": "libs"}, "cat", "/etc/hostname")
        assert "/tls/x86_64/x86_64" in traced.stderr, traced.stderr
    libdir = Path(env["HPCBOX_PRELOAD_LIBPATH"].split(":")[0])
    (libdir / "tls").mkdir()
    env = preload_environment(engine.parse(config(root, "true")))
    assert "~" not in env["HPCBOX_PRELOAD_LOADERS"], env["HPCBOX_PRELOAD_LOADERS"]


def test_a_program_changed_between_two_execs_runs_as_it_is_now(tmp_path):
    """A shell that runs the same path again (dash plans each exec in a vfork child, so what one
    child learnt of the file is there for the next): rewritten in place into a script, the script
    runs; replaced by a symlink, its target runs; a FIFO or a directory is refused as Linux refuses
    them (EACCES), without opening them."""
    from hpcbox_engine_preload._engine import preload_environment

    root = tmp_path / "r"
    for program in ("sh", "pwd"):
        copy_with_libraries(program, root)
    prog = root / "usr/bin/prog"
    shutil.copy2(root / shutil.which("pwd", path="/usr/bin:/bin").lstrip("/"), prog)
    os.mkfifo(root / "usr/bin/fifo")
    os.chmod(root / "usr/bin/fifo", 0o755)
    env = preload_environment(engine.parse(config(root, "true")))
    script = ("/usr/bin/prog; /usr/bin/prog; printf '#!/usr/bin/sh\\necho replaced\\n' > /usr/bin/prog; "
              "/usr/bin/prog; /usr/bin/prog; /usr/bin/fifo; echo fifo $?; /usr/bin; echo dir $?")
    proc = _launch(env, "sh", "-c", script)
    assert proc.stdout.splitlines() == ["/", "/", "replaced", "replaced", "fifo 126", "dir 126"], \
        proc.stdout + proc.stderr
    prog.unlink()
    prog.symlink_to("/usr/bin/pwd")  # a guest path
    proc = _launch(env, "sh", "-c", "/usr/bin/prog; cd /usr; /usr/bin/prog")
    assert proc.stdout.splitlines() == ["/", "/usr"], proc.stdout + proc.stderr
