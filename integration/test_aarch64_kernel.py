"""The aarch64 helpers on a real aarch64 Linux kernel: scripts/aarch64-vm-check boots Debian's arm64
kernel in qemu-system-aarch64 (TCG, no KVM) with an initramfs holding the aarch64 wheels'
hpcbox-ptrace and hpcbox-userns, a container rootfs (busybox, a glibc program run through the
container's loader, a static one) and scripts/aarch64-vm/init, which runs the checks and prints one
line per check on the console. qemu-user, which runs the rest of the aarch64 tests, cannot run a
tracer: this is where the aarch64 tracer really traces.

One VM boot serves every test of this module (about 2-3 minutes on a 2-core VM, the wheels' cross
build included); each expected check is its own test, so a failure names it and shows what the
VM printed for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "aarch64-vm-check"

# what the tracer must do on aarch64, in each combination the init runs: as root without root
# emulation, as an ordinary user with it, with the seccomp fast path and without
PTRACE_COMBINATIONS = ["root.seccomp", "user.seccomp", "user.no-seccomp"]
PTRACE_CHECKS = [
    "open", "stat", "absolute-symlink", "dotdot-clamped", "climbing-symlink", "readlink", "getcwd-chdir",
    "proc-self-cwd", "dynamic-getcwd", "execve-script", "fork-exec-chain", "dynamic-forkexec",
    "dynamic-loader", "proc-self-exe-static", "proc-self-exe-reexec", "threads", "ids", "chown-stat",
    "owners-every-stat", "comm-cmdline", "posix-spawn", "restarted-open", "unix-socket", "fexecve",
    "uname-hostname", "ptrace-by-guest-refused", "write-lands-in-rootfs",
    "volume", "read-only-volume", "exit-code", "signal-exit", "signal-dynamic", "missing-program",
]
USER_ONLY = ["chroot"]  # chroot(2) is emulated for the emulated root (root emulation) only
USERNS_CHECKS = ["guest-path", "dynamic", "getcwd", "exit-code", "signal-exit"]
EXPECTED = (
    ["kernel.aarch64", "ptrace.version", "ptrace.probe.root", "ptrace.probe.user", "userns.version"]
    + [f"ptrace.{combination}.{check}" for combination in PTRACE_COMBINATIONS for check in PTRACE_CHECKS]
    + [f"ptrace.{combination}.{check}" for combination in PTRACE_COMBINATIONS
       if combination.startswith("user.") for check in USER_ONLY]
    + [f"userns.{who}.{check}" for who in ("user", "root") for check in USERNS_CHECKS]
)


def missing(reason: str) -> None:
    """Skip where the VM's inputs are not installed; never in CI, whose set-up installs them."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must have it: scripts/setup-debian --tests)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def vm(test_images, tmp_path_factory) -> Dict[str, Any]:
    """Run scripts/aarch64-vm-check once; its JSON: per check "ok" or what differed, the times."""
    if os.uname().machine != "x86_64":
        pytest.skip("the aarch64 VM check cross-builds the helpers on x86_64")
    for tool, package in (("qemu-system-aarch64", "qemu-system-arm"), ("aarch64-linux-gnu-gcc",
                                                                      "gcc-aarch64-linux-gnu")):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed (Debian: {package}; scripts/setup-debian installs it)")
    inputs = test_images.inputs_dir
    for needed in ("arm64-kernel/vmlinuz", "busybox-static_arm64.deb",
                   "arm64-python/usr/include/python3.11/Python.h"):
        if not (inputs / needed).is_file():
            missing(f"test input {inputs / needed} is missing: run `sudo scripts/prepare-test-inputs`")
    work = tmp_path_factory.mktemp("aarch64-vm")
    result = work / "result.json"
    env = {**os.environ, "HPCBOX_TEST_INPUTS": str(inputs), "HPCBOX_BUILD_PYTHON": sys.executable}
    done = subprocess.run([sys.executable, str(SCRIPT), "--json", str(result), "--work", str(work / "build"),
                           "--timeout", "1200"], capture_output=True, text=True, env=env, check=False,
                          timeout=1800)
    assert result.is_file(), f"exit status {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary: Dict[str, Any] = json.loads(result.read_text())
    summary["exit_status"] = done.returncode
    summary["stderr"] = done.stderr[-3000:]
    return summary


def test_the_vm_runs_every_check_to_the_end(vm):
    """The init reached its last line, nothing failed, and no check ran that this file does not expect
    (a new check must be listed above, so that it is reported by name)."""
    assert vm["done"], "the VM did not finish; its console's last lines:\n" + "\n".join(vm["console_tail"])
    failed = sorted(name for name, detail in vm["checks"].items() if detail != "ok")
    assert failed == [], failed
    assert sorted(set(vm["checks"]) - set(EXPECTED)) == []
    assert vm["exit_status"] == 0, vm["stderr"]


@pytest.mark.parametrize("name", EXPECTED)
def test_check_passes_on_the_aarch64_kernel(vm, name):
    checks: Dict[str, str] = vm["checks"]
    if name not in checks:
        tail: List[str] = vm["console_tail"]
        pytest.fail(f"{name} did not run; the console's last lines:\n" + "\n".join(tail))
    assert checks[name] == "ok", f"{name}: {checks[name]}"
