"""Can this host run rootless user-namespace containers? If not, which knob says no and what to do."""

from __future__ import annotations

import os

from hpcbox_oci_bundle import helper_problem

TYPE_CHECKING = False  # typing is for type checkers only (it costs ~2 ms on every `hpcbox run`)
if TYPE_CHECKING:
    from typing import Optional, Tuple

FALLBACK = "or use the ptrace or preload engine, which need no user namespaces"


def _read_knob(proc_root: str, relative: str) -> Optional[str]:
    try:
        with open(os.path.join(proc_root, relative), encoding="ascii") as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def check_knobs(proc_root: str = "/proc") -> Tuple[bool, str]:
    """Look at the sysctls that disable unprivileged user namespaces (procfs root configurable)."""
    value = _read_knob(proc_root, "sys/user/max_user_namespaces")
    if value == "0":
        return False, (
            "user namespaces are disabled: user.max_user_namespaces=0 "
            "(/proc/sys/user/max_user_namespaces); "
            "ask the administrator to run `sysctl -w user.max_user_namespaces=15000` "
            f"(and persist it in /etc/sysctl.d/), {FALLBACK}"
        )
    value = _read_knob(proc_root, "sys/kernel/unprivileged_userns_clone")
    if value == "0":
        return False, (
            "unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone=0 "
            "(/proc/sys/kernel/unprivileged_userns_clone, a Debian/Ubuntu kernel knob); "
            f"ask the administrator to run `sysctl -w kernel.unprivileged_userns_clone=1`, {FALLBACK}"
        )
    value = _read_knob(proc_root, "sys/kernel/apparmor_restrict_unprivileged_userns")
    if value == "1":
        return False, (
            "AppArmor restricts unprivileged user namespaces: kernel.apparmor_restrict_unprivileged_userns=1 "
            "(/proc/sys/kernel/apparmor_restrict_unprivileged_userns); ask the administrator to allow it "
            "(`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or an AppArmor profile with the "
            f"`userns,` rule for the hpcbox-userns runner), {FALLBACK}"
        )
    return True, "the user namespace sysctls allow unprivileged user namespaces"


def runner_problem(runner: str) -> Optional[str]:
    """Why the runner cannot run on this machine (missing, another architecture, ...), or None."""
    problem = helper_problem(runner)
    if problem:
        return f"the runner cannot run: {problem}; reinstall hpcbox-engine-runc (the wheel for this machine)"
    return None


def probe(runner: str) -> Tuple[bool, str]:
    """Fork the runner in probe mode: it unshares user+mount+pid namespaces and mounts a /proc."""
    problem = runner_problem(runner)
    if problem:
        return False, problem
    import subprocess  # (not on the path of a run: ~5 ms to import)

    try:
        done = subprocess.run(
            [runner, "--probe"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"the user namespace probe could not run ({error}); reinstall hpcbox-engine-runc"
    if done.returncode != 0:
        detail = "; ".join(done.stderr.strip().splitlines()) or f"exit status {done.returncode}"
        return False, (
            f"creating a user namespace failed ({detail}); the kernel or a security module (seccomp, "
            f"SELinux, AppArmor, a container runtime) forbids it here, {FALLBACK}"
        )
    return True, "unprivileged user namespaces work here (probe: unshare user/mount/pid, mount /proc)"


def check(runner: str, proc_root: str = "/proc", run_probe: bool = True) -> Tuple[bool, str]:
    # a runner that cannot run is the first thing to fix, whatever the sysctls say
    problem = runner_problem(runner)
    if problem:
        return False, problem
    ok, reason = check_knobs(proc_root)
    if not ok or not run_probe:
        return ok, reason
    return probe(runner)


def runtime_binary(name: str) -> Optional[str]:
    """Path of an installed OCI runtime (runc or crun), also looked up in the sbin dirs."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/local/sbin:/usr/sbin:/sbin"
    import shutil  # lazily: only delegation and `hpcbox info` look for binaries

    return shutil.which(name, path=path)
