"""The lean path of `hpcbox run` (hpcbox.quick): it must read exactly what hpcbox.main's argparse parser
reads, find exactly the container ContainerStore.get finds, and otherwise step aside."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hpcbox import leanjson, quick
from hpcbox import settings as hpcbox_settings
from hpcbox.main import build_parser


def _run_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["run"]


def _kind(action) -> str:
    return {"_StoreTrueAction": "flag", "_StoreFalseAction": "unflag", "_StoreConstAction": "const",
            "_StoreAction": "value", "_AppendAction": "append"}.get(type(action).__name__, "other")


def _default(action):
    return quick.ABSENT if action.default == argparse.SUPPRESS else action.default


COMMON = ("help", "home", "insecure_registry", "ca_bundle")


def test_option_table_is_the_parsers():
    """Every option of run's argparse parser is in quick.RUN_OPTIONS with the same meaning, or in
    quick.RUN_ASIDE (left to argparse) with the same default; and no other."""
    table, aside = {}, {}
    for action in _run_parser()._actions:
        if not action.option_strings or action.dest in COMMON:
            continue
        kind = _kind(action)
        flags = tuple(action.option_strings)
        if flags in quick.RUN_ASIDE:
            aside[flags] = (action.dest, _default(action))
            continue
        choices = tuple(action.choices) if action.choices else None
        table[flags] = (action.dest, kind, choices, action.const if kind == "const" else None)
        if kind in ("value", "append"):
            expected = [] if kind == "append" else quick.RUN_DEFAULTS.get(action.dest)
            assert action.default == expected, action.dest
        elif kind in ("flag", "unflag"):
            assert action.default == (action.dest in quick.RUN_DEFAULTS), action.dest
    assert table == quick.RUN_OPTIONS
    assert aside == quick.RUN_ASIDE
    groups = {frozenset(flag for action in group._group_actions for flag in action.option_strings)
              for group in _run_parser()._mutually_exclusive_groups}
    assert groups == set(quick.RUN_EXCLUSIVE)


def test_top_level_defaults_are_the_parsers():
    parser = build_parser()
    defaults = {a.dest: a.default for a in parser._actions
                if a.option_strings and a.default != argparse.SUPPRESS and a.dest not in ("help", "version")}
    assert defaults == quick.TOP_DEFAULTS


def _argparse(words):
    try:
        return vars(build_parser(words, full=False).parse_args(words))
    except SystemExit:
        return None


VALUES = ["x", "", "A=1", "/data:/d:ro", "-x", "none", "host", "always", "never", "builtin", "runc", "-1",
          "a b"]
WORDS = st.sampled_from(
    [*sorted({f for flags in [*quick.RUN_OPTIONS, *quick.RUN_ASIDE] for f in flags}), "--rm=1", "--env=A=1",
     "--net=none",
     "--pull=bogus", "-it", "-ti", "-iq", "-e=A", "-eA=1", "--en", "--ent", "--bogus", "-z", "-h", "--help",
     "--", "-", "--home", "--home=/tmp/h", "--insecure-registry", "--ca-bundle", "--version", *VALUES])
TARGETS = st.sampled_from(["box", "c0ffee", "debian:12", "-", "--", "-e"])


@settings(max_examples=400, deadline=None)
@given(top=st.lists(st.sampled_from(["--home", "/h", "--home=/g", "--bogus", "run", "-q", "--repo", "-D"]),
                    max_size=3),
       options=st.lists(WORDS, max_size=7), target=st.lists(TARGETS, max_size=1),
       command=st.lists(st.one_of(WORDS, st.sampled_from(["/bin/true", "ls", "-l"])), max_size=4))
@example(top=[], options=["-it", "-e", "A=1", "-v", "/x:/y"], target=["box"], command=["sh", "-c", "-x"])
@example(top=[], options=["--as-me", "--as-root"], target=["box"], command=[])
@example(top=[], options=["--as-me", "--as-me"], target=["box"], command=[])
@example(top=["--home", "/h"], options=["--home", "/i", "--nv", "--no-batch-env"], target=["box"],
         command=["ls", "--", "-e"])
def test_reads_what_argparse_reads(top, options, target, command):
    words = [*top, "run", *options, *target, *command]
    mine = quick.parse_run(words)
    if mine is not None:
        assert vars(mine) == _argparse(words)


@pytest.mark.parametrize("words", [
    ["run", "box"],
    ["--home", "/h", "run", "--rm", "-it", "-e", "A=1", "--env=B", "-v", "/x:/y:ro", "-w", "/tmp", "-u",
     "1000:1000", "--engine", "runc", "--net", "none", "--entrypoint", "", "box", "sh", "-c", "echo -e"],
    ["run", "--home=/h", "--cpuset-cpus", "0", "--hostenv", "--nosysdirs", "--no-batch-env", "c0ffee"],
])
def test_common_command_lines_take_the_lean_path(words):
    args = quick.parse_run(words)
    assert args is not None and vars(args) == _argparse(words)


@pytest.mark.parametrize("words", [
    ["run"], ["run", "-h"], ["--version"], ["ps"], ["run", "--", "box"], ["run", "--en", "A=1", "box"],
    ["run", "-eA=1", "box"], ["run", "-e", "-x", "box"], ["run", "--net", "bogus", "box"],
    ["--insecure-registry", "r", "run", "box"], ["run", "box", "a", "--", "b"], ["run", "--rm=yes", "box"],
])
def test_anything_else_is_left_to_argparse(words):
    assert quick.parse_run(words) is None


# -- finding the container -----------------------------------------------------------------------------

def _container(home: Path, cid: str, names=(), created="2026-01-01T00:00:00Z", **meta) -> None:
    directory = home / "containers" / cid
    (directory / "rootfs").mkdir(parents=True)
    (directory / "container.json").write_text(json.dumps({"id": cid, "names": list(names), "created": created,
                                                           **meta}))


def test_finds_what_the_store_finds(tmp_path):
    from hpcbox.containers import ContainerError, ContainerStore
    from hpcbox.store import Store

    home = tmp_path / "home"
    _container(home, "ab" + "0" * 62, ["web"], created="2026-01-02T00:00:00Z")
    _container(home, "ab" + "1" * 62, ["db", "other"])
    _container(home, "cd" + "2" * 62, [], storage="overlay")
    _container(home, "ef" + "3" * 62, ["mismatch"])
    (home / "containers" / ("ef" + "3" * 62) / "container.json").write_text(json.dumps({"id": "ff" * 32}))
    (home / "containers" / ".create-x").mkdir()
    (home / "containers" / "notes.txt").write_text("x")
    cs = ContainerStore(Store(home))
    for text in ["web", "db", "other", "ab" + "0" * 62, "ab1", "cd", "c", "a", "ab", "ef", "mismatch", "nope",
                 "", "AB", "ab" + "0" * 62 + "0"]:
        try:
            expected = cs.get(text).id
        except ContainerError:
            expected = None
        found = quick.find_container(str(home), text)
        if expected is None or found is None:
            # the lean path may only step aside (then the store decides), never pick another one
            assert found is None, text
        else:
            assert found.id == expected, text
            full = cs.get(text)
            assert (found.names, found.image_config, found.settings, found.storage, found.nvidia) == (
                full.names, full.image_config, full.settings, full.storage, full.nvidia)
            assert (found.rootfs, found.config_path, found.dir) == (
                str(full.rootfs), str(full.config_path), str(full.dir))
    assert quick.find_container(str(home), "web") is not None  # not vacuous


def test_store_home_is_the_settings_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UDOCKER_DIR", "/u/dir")
    assert quick.store_home(quick.Args(home=None)) == str(hpcbox_settings.home(quick.Args(home=None)))
    monkeypatch.delenv("UDOCKER_DIR")
    for home, env in [(None, None), ("h", None), ("/abs/h", None), (None, "rel"), ("~/x", None),
                       ("a/./b", None), ("a//b", None), ("a/../b", None), ("/x/", None), ("", "/e")]:
        if env is None:
            monkeypatch.delenv("HPCBOX_HOME", raising=False)
        else:
            monkeypatch.setenv("HPCBOX_HOME", env)
        args = quick.Args(home=home)
        mine = quick.store_home(args)
        if mine is not None:
            assert mine == str(hpcbox_settings.home(args)), (home, env)
    monkeypatch.delenv("HPCBOX_HOME", raising=False)
    assert quick.store_home(quick.Args(home="h")) == str(tmp_path / "h")


# -- JSON without json -----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(value=JSON, pad=st.sampled_from(["", " ", "\n\t ", "\r\n"]))
def test_leanjson_reads_what_json_reads(value, pad):
    text = pad + json.dumps(value) + pad
    assert leanjson.same(leanjson.loads(text), json.loads(text))


# what the store writes: also tuples, non-string keys, NaN and infinities, any text
WRITTEN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (st.lists(children, max_size=4) | st.lists(children, max_size=3).map(tuple)
                      | st.dictionaries(st.text() | st.integers() | st.floats() | st.booleans() | st.none(),
                                        children, max_size=4)),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(value=WRITTEN, layout=st.sampled_from([{}, {"indent": 2}, {"indent": 0}, {"separators": (",", ":")},
                                              {"indent": 1, "separators": (";", "=")}]))
def test_leanjson_writes_what_json_writes(value, layout):
    assert leanjson.dumps(value, **layout) == json.dumps(value, **layout)


@pytest.mark.parametrize("value", [{"a": {1, 2}}, [b"x"], {(1, 2): 3}, {"a": object()}])
def test_leanjson_leaves_other_values_to_json(value):
    """json writes or refuses what is not a JSON type, and so does dumps (json raises the same error)."""
    with pytest.raises(TypeError) as expected:
        json.dumps(value)
    with pytest.raises(TypeError) as got:
        leanjson.dumps(value)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("text", ["", "  ", "{", "[1,]", "{} x", "nul", "[1] [2]", "{'a': 1}"])
def test_leanjson_refuses_what_json_refuses(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        leanjson.loads(text)


# what a truncated or damaged container.json holds: errors inside a value, not only at its start
DAMAGED = ['{"id": "', '{"id": "ab', '{"id": "ab", "names": [', '[1,', '{"a": tru', '"\\x"', '{"a" 1}',
           '[1 2]', '{"a": 1,}', '\ufeff{}', '{"a": -}', '[1e]']


def test_leanjson_refuses_damaged_text_with_a_value_error_before_json_is_imported():
    """Python 3.11's C scanner reports an error inside a value through json.decoder; before anything
    imported json that is a SystemError ("returned NULL without setting an exception"), which the
    lean path of `hpcbox run` must never show (a damaged container.json)."""
    code = ("import sys; from hpcbox import leanjson; assert 'json' not in sys.modules\n"
            f"for text in {DAMAGED!r}:\n"
            "    try:\n"
            "        leanjson.loads(text)\n"
            "    except ValueError:\n"
            "        continue\n"
            "    except BaseException as exc:\n"
            "        sys.exit(f'{text!r}: {type(exc).__name__}: {exc}')\n"
            "    sys.exit(f'{text!r}: read')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("text", DAMAGED)
def test_leanjson_refuses_damaged_text(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        leanjson.loads(text)


def test_leanjson_same_is_strict():
    assert leanjson.same({"a": [1, True]}, {"a": [1, True]})
    assert not leanjson.same({"a": 1, "b": 2}, {"b": 2, "a": 1})  # key order: json.dumps would differ
    assert not leanjson.same([1], [True])
    assert not leanjson.same([1.0], [1])
    assert not leanjson.same([1], (1,))


# -- the command ------------------------------------------------------------------------------------------

def test_entry_points_use_the_lean_path():
    """The console script and `python -m hpcbox` both start in hpcbox.quick."""
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert 'hpcbox = "hpcbox.quick:main"' in text
    code = "import sys, hpcbox.quick as q; q.main = lambda argv=None: print('quick') or 0; import runpy; " \
           "runpy.run_module('hpcbox', run_name='__main__')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "quick", done.stderr


@pytest.mark.parametrize("idmap", ["auto", "single"])
def test_lean_run_imports_little(tmp_path, idmap):
    """`hpcbox run` of an existing container, up to the start of the runner, imports neither argparse,
    json, pathlib, re, typing, enum, subprocess nor collections (each costs milliseconds on every
    start), nor struct (for ELF headers) or hpcbox.udocker (udocker's options), with one mapped id and
    with the full map of /etc/subuid where it grants one (the runner runs newuidmap/newgidmap itself)."""
    home = tmp_path / "home"
    _container(home, "ab" * 32, ["box"], image_config={"config": {"Cmd": ["/bin/true"]}},
               settings={"annotations": {"org.hpcbox.runc.idmap": idmap}})
    code = f"""
import sys
from hpcbox_oci_bundle import spawn as _spawn
real, seen = _spawn._fork_exec, {{}}
def fork_exec(argv, env, close):  # the runner is not needed: what was imported by then is
    seen["modules"] = set(sys.modules)
    seen["full"] = "--newuidmap" in argv
    return real(["/bin/true"], env, close)
_spawn._fork_exec = fork_exec
import hpcbox.quick
status = hpcbox.quick.main(["--home", {str(home)!r}, "run", "--engine", "runc", "box"])
heavy = {{"argparse", "json", "pathlib", "re", "typing", "enum", "subprocess", "collections", "struct",
         "hpcbox.udocker"}}
heavy &= seen.get("modules", {{"?"}})
print(status, sorted(heavy) if seen else "runner-not-started-by-the-lean-spawn", seen.get("full"))
"""
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert first.stdout.split(None, 1)[0] == "0", first.stdout + first.stderr  # writes config.json
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    from hpcbox_engine_runc import idmap as maps

    full = idmap == "auto" and maps.plan(0, 0).possible
    assert again.stdout == f"0 [] {full}\n", again.stdout + again.stderr


def test_the_lean_run_collects_no_garbage_and_the_full_path_does(tmp_path):
    """The `hpcbox` command's lean run turns the cyclic garbage collector off (collections cost ~1.5 ms of
    each start; the process ends with the container); whatever goes on (to `run`'s own command for an
    image, to hpcbox.main for other commands: both may pull or extract) has it on."""
    home = tmp_path / "home"
    _container(home, "ef" * 32, ["box"], image_config={"config": {"Cmd": ["/bin/true"]}})
    code = """
import gc, sys
from hpcbox_oci_bundle import spawn as _spawn
import hpcbox.main
real = _spawn._fork_exec
def fork_exec(argv, env, close):
    print("lean run, collecting:", gc.isenabled(), flush=True)
    return real(["/bin/true"], env, close)
_spawn._fork_exec = fork_exec
hpcbox.main.main = lambda argv=None: print("full path, collecting:", gc.isenabled(), flush=True) or 0
import hpcbox.commands.run
hpcbox.commands.run.run = lambda args: print("run command, collecting:", gc.isenabled(), flush=True) or 0
sys.argv = ["hpcbox", *sys.argv[1:]]
import hpcbox.quick
hpcbox.quick.main()
"""
    for words, said in ((["run", "--engine", "runc", "box"], "lean run, collecting: False"),
                        (["run", "--engine", "runc", "no-such-container"], "run command, collecting: True"),
                        (["ps"], "full path, collecting: True")):
        done = subprocess.run([sys.executable, "-c", code, "--home", str(home), *words], capture_output=True,
                              text=True, check=False)
        assert done.stdout.splitlines()[:1] == [said], done.stdout + done.stderr
        assert done.returncode == 0, done.stdout + done.stderr


def test_lean_run_ends_with_the_containers_status_and_output(tmp_path):
    """`hpcbox run CONTAINER` ends the process as soon as the container has ended (no interpreter
    teardown): the status and everything written before it arrive, and an atexit handler of the
    caller's would not run (the path registers none)."""
    import shutil

    busybox = shutil.which("busybox") or "/bin/busybox"
    kind = subprocess.run(["file", "-L", busybox], capture_output=True, text=True, check=False).stdout
    if not os.path.exists(busybox) or "static" not in kind:
        pytest.skip("needs a static busybox (Debian: apt-get install busybox-static)")
    from hpcbox_engine_runc import engine

    ok, why = engine.available()
    if not ok:
        pytest.skip(why)
    home = tmp_path / "home"
    cid = "cd" * 32
    _container(home, cid, ["box"], image_config={"config": {"Cmd": ["/bin/sh"]}})
    rootfs = home / "containers" / cid / "rootfs"
    for sub in ("bin", "etc", "tmp", "proc", "dev", "sys"):
        (rootfs / sub).mkdir()
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    (rootfs / "bin" / "sh").symlink_to("busybox")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    code = ("import atexit, sys; atexit.register(lambda: print('teardown', file=sys.stderr)); "
            "from hpcbox.quick import main; sys.exit(main())")
    for _ in range(2):  # (the first run writes config.json)
        done = subprocess.run([sys.executable, "-c", code, "--home", str(home), "run", "--engine", "runc",
                               "box", "/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
                              capture_output=True, text=True, check=False, timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


@pytest.mark.parametrize("thread", [False, True])
def test_full_path_commands_skip_only_the_teardown(tmp_path, thread):
    """A command of the full path (here `images`) ends without the interpreter's teardown (an object
    freed only then is never finalized) but after the atexit handlers, with its status and output; while
    a non-daemon thread still runs, the normal exit waits for it as Python's would."""
    code = ("import atexit, sys, threading, time\n"
            "class Late:\n"
            "    def __del__(self): print('finalized', file=sys.stderr, flush=True)\n"
            "late = Late()\n"
            "atexit.register(lambda: print('handler', file=sys.stderr, flush=True))\n"
            "def work(): time.sleep(0.5); print('thread', file=sys.stderr, flush=True)\n"
            f"if {thread}: threading.Thread(target=work).start()\n"
            "from hpcbox.quick import main\n"
            "sys.exit(main())\n")
    done = subprocess.run([sys.executable, "-c", code, "--home", str(tmp_path / "home"), "images"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("REPOSITORY") or done.stdout.startswith("IMAGE"), done.stdout
    lines = done.stderr.split()
    if thread:  # the normal exit: the thread is waited for, then the handlers run (then the teardown)
        assert lines[:2] == ["thread", "handler"], done.stderr
    else:  # (the normal exit's teardown would finalize `late`: see the thread case)
        assert lines == ["handler"], done.stderr


def test_an_image_run_goes_to_the_run_command_without_the_parser(tmp_path):
    """`hpcbox run [--rm] [--overlay] IMAGE`: hpcbox.commands.run.run (what hpcbox.main calls for `run`) gets
    the attributes argparse would give, without argparse or hpcbox.main being imported (~12 ms)."""
    code = """
import sys
import hpcbox.commands.run
def run(args):
    print(sorted(m for m in ("argparse", "hpcbox.main") if m in sys.modules), args.target, args.rm,
          args.overlay, args.command, flush=True)
    return 3
hpcbox.commands.run.run = run
sys.argv = ["hpcbox", *sys.argv[1:]]
import hpcbox.quick
hpcbox.quick.main()
"""
    done = subprocess.run([sys.executable, "-c", code, "--home", str(tmp_path / "home"), "run", "--rm",
                           "--overlay", "127.0.0.1:5000/x/y:1", "sh", "-c", "true"],
                          capture_output=True, text=True, check=False)
    assert done.stdout == "[] 127.0.0.1:5000/x/y:1 True True ['sh', '-c', 'true']\n", done.stderr
    assert done.returncode == 3, done.stderr
