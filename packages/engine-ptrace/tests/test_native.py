from hpcbox_engine_ptrace import abi_version


def test_c_core_is_compiled_and_callable():
    assert abi_version() == 1
