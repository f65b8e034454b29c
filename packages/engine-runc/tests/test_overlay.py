"""Rootless overlayfs over read-only layer dirs: the container writes into its upper dir only."""

from __future__ import annotations

import shutil

import pytest

from hpcbox_engine_runc import BundleError, engine, overlay


def test_kernel_version_parsing():
    assert overlay.kernel_version("6.18.44-fc-v595") == (6, 18)
    assert overlay.kernel_version("5.10.0-28-amd64") == (5, 10)
    assert overlay.kernel_version("garbage") == (0, 0)


def test_prepare_refuses_bad_lower_dirs(tmp_path):
    with pytest.raises(BundleError, match="no lower layer"):
        overlay.prepare([], str(tmp_path))
    with pytest.raises(BundleError, match="unusable"):
        overlay.prepare([str(tmp_path / "missing")], str(tmp_path))


def test_container_over_shared_layers_copies_nothing(tmp_path, need_userns, run):
    ok, why = overlay.supported(str(tmp_path))
    if not ok:
        pytest.skip(why)
    base, top = tmp_path / "layer-base", tmp_path / "layer-top"
    (base / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", base / "bin" / "busybox")
    (base / "bin" / "sh").symlink_to("busybox")
    (base / "etc").mkdir()
    (base / "etc" / "motd").write_text("from the base layer\n")
    (top / "etc").mkdir(parents=True)
    (top / "etc" / "motd").write_text("from the top layer\n")
    container = tmp_path / "container"
    config = {
        "process": {"args": ["sh", "-c", "busybox cat /etc/motd; echo mine > /etc/motd; echo new > /new"],
                    "env": ["PATH=/bin"]},
        "root": {"path": overlay.merged_dir(str(container))},
        "annotations": overlay.prepare([str(top), str(base)], str(container)),
    }
    result = run(config)
    assert (result.code, result.out) == (0, "from the top layer\n"), result
    assert (container / "upper" / "etc" / "motd").read_text() == "mine\n"
    assert (container / "upper" / "new").read_text() == "new\n"
    assert (top / "etc" / "motd").read_text() == "from the top layer\n"
    assert not (base / "new").exists() and not (top / "new").exists()
    assert engine.run(config, stdout=None) == 0  # a second run sees the same upper dir
    overlay.remove(str(container))
    assert not container.exists()


def test_supported_reports_a_refusal(tmp_path):
    fake = tmp_path / "runner"
    fake.write_text("#!/bin/sh\necho 'hpcbox-userns: mount overlay on /x: Invalid argument' >&2\nexit 125\n")
    fake.chmod(0o755)
    ok, why = overlay.supported(str(tmp_path), runner=str(fake))
    if overlay.kernel_version() < overlay.MIN_KERNEL:
        assert "needs Linux 5.11" in why
    else:
        assert not ok
        assert "Invalid argument" in why and "full copy" in why
    assert [p.name for p in tmp_path.iterdir()] == ["runner"]  # the probe cleans up
