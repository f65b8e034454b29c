import pytest

from hpcbox_registry import InvalidPlatformError, Platform, PlatformNotFoundError
from hpcbox_registry.platform import select_platform


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", "linux/amd64"),
        ("aarch64", "linux/arm64/v8"),
        ("armv7l", "linux/arm/v7"),
        ("armv6l", "linux/arm/v6"),
        ("i686", "linux/386"),
        ("ppc64le", "linux/ppc64le"),
        ("s390x", "linux/s390x"),
        ("riscv64", "linux/riscv64"),
    ],
)
def test_host_maps_python_machine_names(monkeypatch, machine, expected):
    monkeypatch.setattr("hpcbox_registry.platform._pyplatform.machine", lambda: machine)
    assert str(Platform.host()) == expected


def test_parse_and_str():
    p = Platform.parse("linux/arm64/v8")
    assert (p.os, p.architecture, p.variant) == ("linux", "arm64", "v8")
    assert str(p) == "linux/arm64/v8"
    assert str(Platform.parse("linux/amd64")) == "linux/amd64"
    assert str(Platform.parse("arm64")) == "linux/arm64"
    assert str(Platform.parse("linux/x86_64")) == "linux/amd64"
    assert str(Platform.parse("Linux/ARMHF")) == "linux/arm/v7"
    for bad in ("", "linux", "linux/", "/amd64", "a/b/c/d", "linux/../../etc", "linux/..", "linux/a b",
                "linux/amd64/$(x)"):
        with pytest.raises(InvalidPlatformError) as err:  # a PlatformNotFoundError and a ValueError too
            Platform.parse(bad)
        assert "os/architecture" in str(err.value)
        assert isinstance(err.value, (PlatformNotFoundError, ValueError))


def test_arm64_with_and_without_v8_match_each_other():
    assert Platform.parse("linux/arm64").matches(Platform.parse("linux/arm64/v8"))
    assert Platform.parse("linux/arm64/v8").matches(Platform.parse("linux/arm64"))
    assert not Platform.parse("linux/arm64").matches(Platform.parse("linux/amd64"))
    assert not Platform.parse("linux/amd64").matches(Platform.parse("windows/amd64"))


def test_selection_prefers_exact_then_older_arm_variants():
    cands = [Platform.parse(s) for s in ("linux/arm/v6", "linux/arm/v7", "linux/amd64", "linux/arm64")]
    assert select_platform(Platform.parse("linux/arm/v7"), cands) == 1
    assert select_platform(Platform.parse("linux/arm/v6"), cands) == 0
    assert select_platform(Platform.parse("linux/arm/v8"), cands) == 1
    assert select_platform(Platform.parse("linux/arm/v5"), cands) is None
    assert select_platform(Platform.parse("linux/arm64/v8"), cands) == 3
    assert select_platform(Platform.parse("linux/s390x"), cands) is None
    assert select_platform(Platform.parse("linux/amd64"), [None, *cands]) == 3


def test_amd64_variants_are_taken_only_after_the_plain_one():
    cands = [Platform.parse("linux/amd64/v3"), Platform.parse("linux/amd64")]
    assert select_platform(Platform.parse("linux/amd64"), cands) == 1
    assert select_platform(Platform.parse("linux/amd64"), cands[:1]) == 0
    assert select_platform(Platform.parse("linux/amd64/v3"), cands) == 0


def test_dict_round_trip():
    data = {"architecture": "arm", "os": "linux", "variant": "v7", "os.features": ["x"]}
    assert Platform.from_dict(data).to_dict() == data
