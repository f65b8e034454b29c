"""`/proc/self/exe`, `/proc/PID/cmdline` and `comm`, and ptrace by the guest, under every engine.

The ptrace and preload engines start a dynamic program through the container's loader
(`ld.so ... PROGRAM ARGS`); a program must still see itself, not the loader, where Linux shows it:
the exe link (readlink, open, exec), the command line and the name. Each test runs the same script
under runc (the reference: what Linux does) and under the path-translation engines, and checks the
same expected output for all of them.
"""

from __future__ import annotations

import pytest
import test_run_common as common
from test_cli_common import ok

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian


@pytest.fixture(params=common.RUN_ENGINES)
def engine(request) -> str:
    return request.param


def _run(run_store, engine: str, container: str, script: str):
    return run_store("run", *common.engine_args(run_store, engine), container, "bash", "-c", script)


def test_proc_self_exe_is_the_program(run_store, shared_debian, engine):
    script = r"""
        readlink /proc/self/exe
        h() { md5sum "$1" | cut -c1-32; }
        [ "$(h /proc/self/exe)" = "$(h /usr/bin/md5sum)" ] && echo same-file
        stat -L -c %s /proc/self/exe | cmp -s - <(stat -c %s /usr/bin/stat) && echo same-size
        tr '\0' ' ' < /proc/self/cmdline; echo
        cat /proc/self/comm
        ls -l /proc/$$/exe | sed 's/.* -> //'
        tr '\0' '\n' < /proc/$$/cmdline | head -2 | paste -sd' '
    """
    proc = ok(_run(run_store, engine, shared_debian, script))
    assert proc.stdout.splitlines() == [
        "/usr/bin/readlink",
        "same-file",
        "same-size",
        "tr \\0   ",  # tr's own argv: "tr", "\0", " "
        "cat",
        "/usr/bin/bash",  # /proc/$$/exe: the shell's, read by ls (another process)
        "bash -c",  # bash's argv: "bash", "-c", the script
    ], proc.stderr


def test_exec_of_proc_self_exe_runs_the_program_again(run_store, shared_debian, engine):
    # what programs that re-execute themselves do (bash here: `exec /proc/self/exe`)
    script = r"""
        again='echo "again: $0 $1"; readlink /proc/$$/exe; true'
        if [ -z "$AGAIN" ]; then AGAIN=1 exec /proc/self/exe -c "$again" x y; fi
    """
    proc = ok(_run(run_store, engine, shared_debian, script))
    # readlink (another process) reads bash's link
    assert proc.stdout.splitlines() == ["again: x y", "/usr/bin/bash"], proc.stderr
    again = 'exec("/proc/self/exe", "-e", "print qq(perl again \\@ARGV\\n)", "z") or die "exec: $!"'
    perl = ok(_run(run_store, engine, shared_debian, f"perl -e 'if (!@ARGV) {{ {again} }}'"))
    assert perl.stdout == "perl again z\n", perl.stderr


def test_cmdline_and_comm_of_another_process(run_store, shared_debian, engine):
    # a child seen from outside, as ps sees it: wait (generous deadline) until it has exec'd
    script = r"""
        sleep 600 & p=$!
        for i in $(seq 3000); do [ "$(cat /proc/$p/comm 2>/dev/null)" = sleep ] && break; sleep 0.02; done
        line() { tr '\0' ' ' < /proc/$p/cmdline; }
        for i in $(seq 3000); do [ "$(line)" = "sleep 600 " ] && break; sleep 0.02; done
        cat /proc/$p/comm; tr '\0' ' ' < /proc/$p/cmdline; echo; readlink /proc/$p/exe
        [ "$(md5sum < /proc/$p/exe)" = "$(md5sum < /usr/bin/sleep)" ] && echo same-file
        kill $p; wait $p 2>/dev/null; true
    """
    proc = ok(_run(run_store, engine, shared_debian, script))
    assert proc.stdout.splitlines() == ["sleep", "sleep 600 ", "/usr/bin/sleep", "same-file"], proc.stderr


# The memory map's fields in /proc/self/stat (proc(5): 26-28 and 45-51) as bash sees its own: the
# argument and environment ranges hold what /proc/self/cmdline and /proc/self/environ show, the
# stack field lies in [stack], the break and the ranges are ordered, and the code range lies in
# the program's own executable mapping.
STAT_MAP_FIELDS = r"""
    read -r -a f < /proc/self/stat
    field() { echo "${f[$(($1 - 1))]}"; }
    where() {  # the mapping of /proc/self/maps holding address $1: its path (or "anon")
        local a=$1 range perms rest
        while read -r range perms _ _ _ rest; do
            if (( a >= 16#${range%-*} && a < 16#${range#*-} )); then echo "${rest:-anon} $perms"; return; fi
        done < /proc/self/maps
        echo none
    }
    echo "cmdline $(( $(field 49) - $(field 48) == $(wc -c < /proc/$$/cmdline) ))"
    echo "environ $(( $(field 51) - $(field 50) == $(wc -c < /proc/$$/environ) ))"
    echo "ordered $(( $(field 26) < $(field 27) && $(field 45) <= $(field 46) && $(field 48) < $(field 49) ))"
    echo "stack $(where "$(field 28)" | cut -d' ' -f1)"
    code=$(where "$(field 26)"); echo "code ${code##*/}"
    code=$(where "$(( $(field 27) - 1 ))"); echo "code end ${code##*/}"
"""


def test_proc_self_stat_describes_the_program(run_store, shared_debian, engine):
    proc = ok(_run(run_store, engine, shared_debian, STAT_MAP_FIELDS))
    lines = proc.stdout.splitlines()
    assert lines[:4] == ["cmdline 1", "environ 1", "ordered 1", "stack [stack]"], proc.stdout + proc.stderr
    if engine == "ptrace":
        return  # the tracer keeps the loader's code range (its README, "Limits")
    assert lines[4:] == ["code bash r-xp", "code end bash r-xp"], proc.stdout + proc.stderr


PTRACE_TRACEME_TWICE = r"""
    case "$(uname -m)" in x86_64) nr=101;; aarch64) nr=117;; *) echo "no ptrace on $(uname -m)"; exit 2;; esac
    # PTRACE_TRACEME in a child that exits right after (one that exec'd would stop for its parent)
    traceme="\$r = syscall($nr, 0, 0, 0, 0); print \$r == 0 ? qq(traceme ok\n) : qq(traceme: \$!\n)"
    perl -e "$traceme"
    perl -e "$traceme"
"""


def test_ptrace_by_the_guest(run_store, shared_debian, engine):
    proc = ok(_run(run_store, engine, shared_debian, PTRACE_TRACEME_TWICE))
    if engine == "ptrace":
        # one tracer per process: the engine is it, so a debugger inside is refused, said once
        assert proc.stdout.splitlines() == ["traceme: Operation not permitted"] * 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if "debugger" in line]
        assert len(lines) == 1 and "--engine runc" in lines[0], proc.stderr
    else:
        assert proc.stdout.splitlines() == ["traceme ok"] * 2, proc.stderr
        assert "debugger" not in proc.stderr
