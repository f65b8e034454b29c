"""GPUs without a GPU: `hpcbox run --gpus` and `hpcbox setup --nvidia` against a fake NVIDIA driver tree
(hpcbox_testing.fakegpu, found through HPCBOX_NVIDIA_ROOT), through the real runc engine (builtin
runner) as the calling user: the driver files and device nodes are visible at the right places in the
container, the environment is set, the CUDA version check fires, and nothing is left in the rootfs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_run_common as common
from hpcbox_testing.fakegpu import FakeDriver
from test_cli_common import hpcbox_env, ok, one_error

run_store = common.run_store  # fixtures
shared_debian = common.shared_debian

LIB = "/usr/local/nvidia/lib64"


@pytest.fixture
def fake(tmp_path) -> FakeDriver:
    return FakeDriver(tmp_path / "driver").build()


def gpu_env(driver: FakeDriver, **extra: str) -> dict:
    return hpcbox_env(HPCBOX_NVIDIA_ROOT=str(driver.root), **extra)


def env_of(stdout: str) -> dict:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def test_gpus_all_binds_driver_devices_and_sets_the_environment(run_store, shared_debian, fake):
    script = (f"ls {LIB}; echo ---; ls /usr/local/nvidia/bin; echo ---; cat /dev/nvidia0 /dev/nvidia1 "
              f"/dev/nvidiactl /dev/nvidia-uvm /dev/nvidia-caps/nvidia-cap1; cat {LIB}/libcuda.so.1; "
              f"cat /lib/firmware/nvidia/{fake.version}/gsp_ga10x.bin; echo ---; nvidia-smi; echo ---; env")
    proc = ok(run_store("run", "--engine", "runc", "--gpus", "all", shared_debian, "sh", "-c", script,
                        env=gpu_env(fake)))
    libs, bins, files, smi, env_text = proc.stdout.split("---\n")
    assert libs.split() == fake.library_names()
    assert "libnvidia-container.so.1" not in libs
    assert bins.split() == ["nvidia-debugdump", "nvidia-smi"]
    assert files.splitlines() == ["fake nvidia0", "fake nvidia1", "fake nvidiactl", "fake nvidia-uvm",
                                  "fake nvidia-caps/nvidia-cap1", f"fake libcuda.so.{fake.version}",
                                  "fake firmware"]
    assert f"Driver Version: {fake.version}" in smi and "CUDA Version: 12.2" in smi
    env = env_of(env_text)
    assert env["LD_LIBRARY_PATH"].split(":")[0] == LIB
    assert env["PATH"].split(":")[-1] == "/usr/local/nvidia/bin"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert "CUDA_VISIBLE_DEVICES" not in env
    config = json.loads((run_store.home / "containers" / container_id(run_store, shared_debian)
                         / "config.json").read_text())
    assert config["annotations"]["org.hpcbox.nvidia.driver"] == fake.version
    # the bind targets lived on a tmpfs: the rootfs has no empty placeholders of the driver afterwards
    rootfs = run_store.home / "containers" / container_id(run_store, shared_debian) / "rootfs"
    assert not (rootfs / "usr/local/nvidia/lib64").exists()


@pytest.mark.parametrize("engine", ["ptrace", "preload"])
def test_gpus_under_the_path_translating_engines(run_store, shared_debian, fake, engine):
    """Without a mount namespace the binds are path translations: the driver files open by their
    paths (a directory listing would not show them; setup --nvidia is the answer for that)."""
    info = json.loads(ok(run_store("info", "--json")).stdout)
    if not info["engines"].get(engine, {}).get("available"):
        pytest.skip(f"engine {engine} is not available here")
    devices = "/dev/nvidia0" if engine == "ptrace" else ""  # preload leaves /dev to the host's nodes
    proc = ok(run_store("run", "--engine", engine, "--gpus", "all", shared_debian, "sh", "-c",
                        f"cat {LIB}/libcuda.so.1 {LIB}/libnvidia-ml.so.1 {devices}; nvidia-smi; "
                        f"echo $LD_LIBRARY_PATH", env=gpu_env(fake)))
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"fake libcuda.so.{fake.version}", f"fake libnvidia-ml.so.{fake.version}"]
    assert (lines[2] == "fake nvidia0") == bool(devices)
    assert "CUDA Version: 12.2" in proc.stdout and lines[-1].startswith(LIB)


def container_id(store, name: str) -> str:
    return next(c["id"] for c in json.loads(ok(store("ps", "--json")).stdout) if name in c["names"])


def test_gpus_selection_nv_alias_and_unknown_gpu(run_store, shared_debian, fake):
    proc = ok(run_store("run", "--gpus", "1", shared_debian, "env", env=gpu_env(fake)))
    env = env_of(proc.stdout)
    assert (env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"], env["CUDA_DEVICE_ORDER"]) == \
        ("1", "1", "PCI_BUS_ID")
    proc = ok(run_store("run", "--gpus", "device=0,1", shared_debian, "env", env=gpu_env(fake)))
    assert env_of(proc.stdout)["CUDA_VISIBLE_DEVICES"] == "0,1"
    # --nv is --gpus all; a scheduler's CUDA_VISIBLE_DEVICES (Slurm's GPU binding) reaches the container
    proc = ok(run_store("run", "--nv", shared_debian, "sh", "-c", "env; ls /usr/local/nvidia/bin",
                        env=gpu_env(fake, CUDA_VISIBLE_DEVICES="1")))
    env = env_of(proc.stdout)
    assert (env["NVIDIA_VISIBLE_DEVICES"], env["CUDA_VISIBLE_DEVICES"]) == ("all", "1")
    assert "nvidia-smi" in proc.stdout
    line = one_error(run_store("run", "--gpus", "5", shared_debian, "true", env=gpu_env(fake)), 2)
    assert "GPU 5" in line and "0,1" in line
    one_error(run_store("run", "--gpus", "first", shared_debian, "true", env=gpu_env(fake)), 2)


def test_cuda_version_check(run_store, shared_debian, tmp_path):
    old = FakeDriver(tmp_path / "old", version="470.57.02", cuda="11.4").build()
    line = one_error(run_store("run", "--gpus", "all", "-e", "CUDA_VERSION=12.2.0", shared_debian, "true",
                               env=gpu_env(old)))
    assert "CUDA 12.2" in line and "470.57.02" in line and "11.4" in line and "535.54.03" in line
    line = one_error(run_store("run", "--gpus", "all", "-e", "NVIDIA_REQUIRE_CUDA=cuda>=11.8 brand=tesla",
                               shared_debian, "true", env=gpu_env(old)))
    assert "CUDA 11.8" in line
    ok(run_store("run", "--gpus", "all", "-e", "CUDA_VERSION=11.4.3", shared_debian, "true",
                 env=gpu_env(old)))
    ok(run_store("run", "--gpus", "all", "-e", "CUDA_VERSION=12.2.0", "-e", "NVIDIA_DISABLE_REQUIRE=1",
                 shared_debian, "true", env=gpu_env(old)))


def test_cuda_version_from_nvidia_smi_when_libcuda_has_no_version(run_store, shared_debian, tmp_path):
    driver = FakeDriver(tmp_path / "smi", version="550.54.14", cuda="12.4", versioned=False).build()
    ok(run_store("run", "--gpus", "all", "-e", "CUDA_VERSION=12.4.1", shared_debian, "true",
                 env=gpu_env(driver)))
    line = one_error(run_store("run", "--gpus", "all", "-e", "CUDA_VERSION=12.6.0", shared_debian, "true",
                               env=gpu_env(driver)))
    assert "CUDA 12.6" in line and "12.4 at most" in line


def test_no_driver_and_no_devices_are_clear_errors(run_store, shared_debian, tmp_path, fake):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error(run_store("run", "--gpus", "all", shared_debian, "true",
                               env=hpcbox_env(HPCBOX_NVIDIA_ROOT=str(empty))))
    assert "no NVIDIA driver found" in line and "HPCBOX_NVIDIA_ROOT" in line
    for name in fake.device_names():
        (fake.root / "dev" / name).unlink()
    line = one_error(run_store("run", "--gpus", "all", shared_debian, "true", env=gpu_env(fake)))
    assert "/dev/nvidiactl" in line and "GPU" in line


def test_setup_nvidia_copies_records_refreshes_and_undoes(run_store, fake, tmp_path):
    cid = run_store.create("debian")
    rootfs = Path(run_store.home) / "containers" / cid / "rootfs"
    try:
        out = ok(run_store("setup", "--nvidia", cid, env=gpu_env(fake))).stdout
        assert fake.version in out
        real = rootfs / f"usr/local/nvidia/lib64/libcuda.so.{fake.version}"
        assert real.is_file() and not real.is_symlink()
        assert (rootfs / "usr/local/nvidia/lib64/libcuda.so.1").resolve() == real.resolve()
        assert (rootfs / "usr/local/nvidia/bin/nvidia-smi").is_file()
        meta = json.loads((rootfs.parent / "container.json").read_text())
        assert meta["nvidia"]["driver"] == fake.version
        assert f"{LIB}/libcuda.so.1" in meta["nvidia"]["files"]
        # a plain run (no --gpus) sees the copies, the device nodes and the environment
        proc = ok(run_store("run", cid, "sh", "-c", f"cat {LIB}/libcuda.so.1 /dev/nvidia0; nvidia-smi; env",
                            env=gpu_env(fake)))
        assert proc.stdout.startswith(f"fake libcuda.so.{fake.version}\nfake nvidia0\n")
        assert env_of(proc.stdout)["LD_LIBRARY_PATH"].startswith(LIB)
        assert "warning" not in proc.stderr
        # the host's driver changes: runs warn, setup --nvidia again refreshes the copy
        newer = FakeDriver(tmp_path / "newer", version="550.54.14", cuda="12.4").build()
        proc = ok(run_store("run", cid, "true", env=gpu_env(newer)))
        assert "setup --nvidia" in proc.stderr and "550.54.14" in proc.stderr
        ok(run_store("setup", "--nvidia", cid, env=gpu_env(newer)))
        assert not real.exists()
        assert (rootfs / "usr/local/nvidia/lib64/libcuda.so.550.54.14").is_file()
        assert "nvidia: driver 550.54.14" in ok(run_store("setup", cid)).stdout
        # --no-nvidia removes exactly what was copied, and the record
        ok(run_store("setup", "--no-nvidia", cid))
        assert not (rootfs / "usr/local/nvidia").exists()
        assert "nvidia" not in json.loads((rootfs.parent / "container.json").read_text()) or \
            json.loads((rootfs.parent / "container.json").read_text())["nvidia"] is None
        proc = ok(run_store("run", cid, "sh", "-c", "echo ${LD_LIBRARY_PATH:-unset}", env=gpu_env(newer)))
        assert proc.stdout == "unset\n"
        one_error(run_store("setup", "--nvidia", cid, env=hpcbox_env(HPCBOX_NVIDIA_ROOT=str(tmp_path))))
    finally:
        ok(run_store("rm", "-f", cid))


def test_setup_nvidia_in_an_overlay_container_writes_its_upper_dir(run_store, fake, tmp_path):
    from hpcbox.containers import overlay

    works, why = overlay.supported(tmp_path)
    if not works:
        pytest.skip(why)
    cid = ok(run_store("create", "--overlay", "debian")).stdout.strip()
    directory = Path(run_store.home) / "containers" / cid
    try:
        ok(run_store("setup", "--nvidia", cid, env=gpu_env(fake)))
        assert (directory / f"upper/usr/local/nvidia/lib64/libcuda.so.{fake.version}").is_file()
        lower = Path(json.loads((directory / "container.json").read_text())["lower"])
        assert not (lower / "usr/local/nvidia").exists()  # the shared image rootfs stays untouched
        proc = ok(run_store("run", cid, "sh", "-c", f"ls {LIB} | wc -l; cat /dev/nvidia1", env=gpu_env(fake)))
        assert proc.stdout.splitlines() == [str(len(fake.library_names())), "fake nvidia1"]
        ok(run_store("setup", "--no-nvidia", cid))
        assert not (directory / "upper/usr/local/nvidia").exists()
    finally:
        ok(run_store("rm", "-f", cid))
