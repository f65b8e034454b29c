import ctypes
import subprocess

from hpcbox_engine_preload import abi_version, preload_library_path


def test_c_core_is_compiled_and_callable():
    assert abi_version() == 2


def test_preload_library_exports_its_abi():
    library = ctypes.CDLL(str(preload_library_path()))
    assert library.hpcbox_preload_abi_version() == 2


def test_preload_library_loads_into_a_host_program():
    env = {"LD_PRELOAD": str(preload_library_path()), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["sh", "-c", "echo loaded"], env=env, capture_output=True, text=True, check=True)
    assert done.stdout == "loaded\n"
    assert "cannot be preloaded" not in done.stderr
