"""hpcbox.gpu: driver discovery in a fake tree, the CUDA version rules, the OCI additions, setup copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpcbox import gpu
from hpcbox.errors import UsageError

LDCONFIG = """\
1234 libs found in cache `/etc/ld.so.cache'
	libnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1
	libnvidia-container.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-container.so.1
	libcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1
	libcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1
	libc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
	libGLX_nvidia.so.0 (libc6,AArch64) => /usr/lib/aarch64-linux-gnu/libGLX_nvidia.so.0
"""


def test_parse_ldconfig_keeps_64_bit_driver_libraries_only():
    assert gpu.parse_ldconfig(LDCONFIG) == [
        "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib/aarch64-linux-gnu/libGLX_nvidia.so.0",
    ]


@pytest.mark.parametrize(("driver", "cuda"), [
    ("535.104.05", (12, 2)), ("535.54.03", (12, 2)), ("535.54.02", (12, 1)), ("470.57.02", (11, 4)),
    ("550.54.14", (12, 4)), ("590.1", (13, 0)), ("384.81", (9, 0)), ("375.26", None),
])
def test_cuda_of_driver(driver, cuda):
    assert gpu.cuda_of_driver(driver) == cuda


def test_min_driver_and_table_order():
    assert gpu.min_driver((12, 2)) == "535.54.03"
    assert gpu.min_driver((12, 7)) == "570.26"  # no 12.7 release: the next one's minimum
    assert gpu.min_driver((14, 0)) is None
    releases = [cuda for cuda, _ in gpu.CUDA_MIN_DRIVER]
    drivers = [gpu._numbers(driver) for _, driver in gpu.CUDA_MIN_DRIVER]
    assert releases == sorted(releases, reverse=True) and drivers == sorted(drivers, reverse=True)


def test_required_cuda_and_smi_parsing():
    require = "cuda>=12.2 brand=tesla,driver>=470,driver<471"
    assert gpu.required_cuda({"NVIDIA_REQUIRE_CUDA": require}) == (12, 2)
    assert gpu.required_cuda({"CUDA_VERSION": "11.8.0"}) == (11, 8)
    assert gpu.required_cuda({"NVIDIA_REQUIRE_CUDA": "cuda>=10.1", "CUDA_VERSION": "12.0"}) == (10, 1)
    assert gpu.required_cuda({"PATH": "/bin"}) is None
    assert gpu.parse_nvidia_smi("| NVIDIA-SMI 550.54.14  Driver Version: 550.54.14  CUDA Version: 12.4 |") \
        == (12, 4)
    assert gpu.parse_nvidia_smi("no GPU") is None


def test_parse_gpus():
    assert gpu.parse_gpus("all") is None
    assert gpu.parse_gpus("0,2,2") == [0, 2]
    assert gpu.parse_gpus('"device=1"') == [1]
    for bad in ("", "x", "-1", "1,,2"):
        with pytest.raises(UsageError):
            gpu.parse_gpus(bad)


def make_tree(root: Path, version: str = "535.104.05", devices: bool = True) -> Path:
    arch = gpu._MULTIARCH.get(os.uname().machine, "x86_64-linux-gnu")
    lib = root / "usr/lib" / arch
    lib.mkdir(parents=True)
    (lib / f"libcuda.so.{version}").write_text("cuda")
    (lib / "libcuda.so.1").symlink_to(f"libcuda.so.{version}")
    (lib / "libnvidia-ml.so.1").write_text("ml")
    (lib / "libnvidia-container.so.1").write_text("toolkit")
    (lib / "libnvidia-dangling.so.1").symlink_to("missing")
    (lib / "libz.so.1").write_text("other")
    (root / "usr/lib").mkdir(exist_ok=True)
    (root / "usr/lib/libnvidia-glcore.so.1").write_bytes(b"\x7fELF\x01\x01\x01" + bytes(9))  # 32-bit
    (root / "usr/lib/libnvidia-tls.so.1").write_bytes(b"\x7fELF\x02\x01\x01" + bytes(9))  # 64-bit
    (root / "run/nvidia-persistenced").mkdir(parents=True)
    (root / "run/nvidia-persistenced/socket").write_text("")
    (root / "usr/bin").mkdir(parents=True)
    smi = root / "usr/bin/nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'CUDA Version: 12.4'\n")
    smi.chmod(0o755)
    if devices:
        (root / "dev/nvidia-caps").mkdir(parents=True)
        for name in ("nvidiactl", "nvidia-uvm", "nvidia0", "nvidia3", "nvidia-caps/nvidia-cap1", "null"):
            (root / "dev" / name).write_text(name)
    return root


def test_discover_a_fake_tree(tmp_path):
    root = make_tree(tmp_path)
    driver = gpu.discover(str(root))
    assert sorted(driver.libraries) == ["libcuda.so.1", "libcuda.so.535.104.05", "libnvidia-ml.so.1",
                                        "libnvidia-tls.so.1"]
    assert driver.libraries["libcuda.so.1"] == str(driver.libraries["libcuda.so.535.104.05"])
    assert driver.version == "535.104.05"
    assert list(driver.binaries) == ["nvidia-smi"]
    assert sorted(driver.gpus) == [0, 3]
    assert sorted(driver.devices) == ["/dev/nvidia-caps/nvidia-cap1", "/dev/nvidia-uvm", "/dev/nvidia0",
                                      "/dev/nvidia3", "/dev/nvidiactl"]
    assert driver.guest(str(root / "lib/firmware/x")) == "/lib/firmware/x"
    assert driver.sockets == [str(root / "run/nvidia-persistenced/socket")]
    guests = [m["destination"] for m in gpu.library_mounts(driver)]
    assert "/run/nvidia-persistenced/socket" in guests


def test_discover_reports_a_missing_driver(tmp_path, monkeypatch):
    monkeypatch.setenv(gpu.ENV_ROOT, str(tmp_path))
    with pytest.raises(gpu.GpuError) as info:
        gpu.discover()
    assert "no NVIDIA driver found" in str(info.value) and "; " in str(info.value)


def config(*env: str) -> dict:
    return {"process": {"env": ["PATH=/usr/bin:/bin", *env]}, "mounts": [], "annotations": {}}


def test_apply_mounts_env_and_selection(tmp_path):
    driver = gpu.discover(str(make_tree(tmp_path)))
    cfg = config("LD_LIBRARY_PATH=/opt/lib")
    assert gpu.apply(cfg, driver, [3], bind_libraries=True, scratch=True, host_env={}) is None
    env = dict(e.split("=", 1) for e in cfg["process"]["env"])
    assert env["LD_LIBRARY_PATH"] == f"{gpu.LIB_DIR}:/opt/lib"
    assert env["PATH"] == "/usr/bin:/bin:/usr/local/nvidia/bin"
    assert (env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"]) == ("3", "3")
    dests = [m["destination"] for m in cfg["mounts"]]
    assert "/dev/nvidia0" in dests and "/dev/nvidia3" in dests  # all nodes: indices mean host GPUs
    assert dests.index("/usr/local/nvidia") < dests.index(f"{gpu.LIB_DIR}/libcuda.so.1")
    assert f"{gpu.BIN_DIR}/nvidia-smi" in dests
    assert cfg["annotations"]["org.hpcbox.nvidia.driver"] == "535.104.05"
    with pytest.raises(UsageError, match="GPU 1 is not on this host"):
        gpu.apply(config(), driver, [1], bind_libraries=True)
    copied = config()  # setup --nvidia: only the device nodes are bound
    gpu.apply(copied, driver, None, bind_libraries=False, host_env={"CUDA_VISIBLE_DEVICES": "0"})
    assert all(m["destination"].startswith("/dev/") for m in copied["mounts"])
    assert "CUDA_VISIBLE_DEVICES=0" in copied["process"]["env"]


def test_apply_without_device_nodes(tmp_path):
    driver = gpu.discover(str(make_tree(tmp_path, devices=False)))
    with pytest.raises(gpu.GpuError, match="/dev/nvidiactl"):
        gpu.apply(config(), driver, None, bind_libraries=True)


def test_check_cuda(tmp_path):
    driver = gpu.discover(str(make_tree(tmp_path, version="470.57.02")))
    assert gpu.check_cuda(driver, {"CUDA_VERSION": "11.4.0"}) is None
    with pytest.raises(gpu.GpuError) as info:
        gpu.check_cuda(driver, {"CUDA_VERSION": "12.2.0"})
    text = str(info.value)
    assert "CUDA 12.2" in text and "11.4 at most" in text and "535.54.03" in text
    assert "NVIDIA_DISABLE_REQUIRE" in text
    assert gpu.check_cuda(driver, {"CUDA_VERSION": "12.2.0", "NVIDIA_DISABLE_REQUIRE": "true"}) is None
    driver.version = None  # unknown version: nvidia-smi (the fake says 12.4) decides
    assert gpu.check_cuda(driver, {"CUDA_VERSION": "12.4"}) is None
    with pytest.raises(gpu.GpuError, match=r"12\.4 at most"):
        gpu.check_cuda(driver, {"CUDA_VERSION": "12.5"})
    driver.binaries.clear()
    assert "cannot tell" in gpu.check_cuda(driver, {"CUDA_VERSION": "12.5"})


def test_copy_into_and_remove_copies(tmp_path):
    driver = gpu.discover(str(make_tree(tmp_path / "host")))
    rootfs = tmp_path / "rootfs"
    (rootfs / "usr/local").mkdir(parents=True)
    written = gpu.copy_into(str(rootfs), gpu.copy_plan(driver))
    lib = rootfs / gpu.LIB_DIR.lstrip("/")
    assert (lib / "libcuda.so.535.104.05").read_text() == "cuda"
    assert os.readlink(lib / "libcuda.so.1") == "libcuda.so.535.104.05"
    assert (rootfs / "usr/local/nvidia/bin/nvidia-smi").stat().st_mode & 0o111
    assert sorted(written) == sorted(g for g, _, _ in gpu.copy_plan(driver))
    (lib / "mine").write_text("not ours")
    assert gpu.remove_copies(str(rootfs), [*written, "/etc/passwd"]) == len(written)
    assert sorted(os.listdir(lib)) == ["mine"]
    os.unlink(lib / "mine")
    gpu.remove_copies(str(rootfs), [])
    assert sorted(os.listdir(rootfs / "usr/local")) == []


def test_copy_refuses_a_symlink_out_of_the_container(tmp_path):
    driver = gpu.discover(str(make_tree(tmp_path / "host")))
    rootfs = tmp_path / "rootfs"
    (rootfs / "usr").mkdir(parents=True)
    (rootfs / "usr/local").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").mkdir()
    with pytest.raises(gpu.GpuError, match="outside"):
        gpu.copy_into(str(rootfs), gpu.copy_plan(driver))
    assert os.listdir(tmp_path / "outside") == []


def test_info_reports_the_driver(tmp_path, monkeypatch, capsys):
    from hpcbox.commands import info

    monkeypatch.setenv(gpu.ENV_ROOT, str(make_tree(tmp_path)))
    assert info.nvidia() == {"available": True, "driver": "535.104.05", "cuda": "12.2", "gpus": [0, 3],
                             "libraries": 4, "binaries": ["nvidia-smi"]}
    monkeypatch.setenv(gpu.ENV_ROOT, str(tmp_path / "none"))
    assert info.nvidia()["available"] is False and "no NVIDIA driver" in info.nvidia()["reason"]
