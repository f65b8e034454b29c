"""Fixtures: stand-in apptainer/singularity binaries, a small rootfs, and OCI bundles that point at it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from singularity_standin import CALLER, make_standin, run_bundle

from hpcbox_engine_singularity import SingularityEngine


@pytest.fixture
def standin(tmp_path):
    def make(kind="apptainer-1.2.5", **kwargs):
        return make_standin(tmp_path / "bin" / kind, kind, **kwargs)

    return make


@pytest.fixture
def make_engine(tmp_path):
    def make(fake, *, caller_uid=CALLER, subuid=None):
        subuid_path = tmp_path / "subuid"
        subuid_path.write_text(subuid or "")
        return SingularityEngine(str(fake.path), caller_uid=caller_uid, subuid_path=str(subuid_path))

    return make


@pytest.fixture
def rootfs(tmp_path) -> Path:
    root = tmp_path / "rootfs"
    for sub in ("bin", "etc", "tmp", "root", "proc", "dev", "sys"):
        (root / sub).mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")  # absolute: mount points are resolved inside the rootfs
    return root


@pytest.fixture
def make_bundle(rootfs, tmp_path):
    counter = [0]

    def make(args=("/bin/true",), *, env=None, cwd="/", user=None, mounts=(), annotations=None,
             hostname=None, readonly=False, root=None, **extra) -> Path:
        counter[0] += 1
        bundle = tmp_path / f"bundle{counter[0]}"
        bundle.mkdir()
        config = {
            "ociVersion": "1.0.2",
            "process": {"args": list(args), "env": list(env if env is not None else ["PATH=/bin:/usr/bin"]),
                        "cwd": cwd, "user": dict(user or {"uid": CALLER, "gid": CALLER})},
            "root": {"path": str(root or rootfs), "readonly": readonly},
            "mounts": list(mounts),
            "annotations": dict(annotations or {}),
        }
        if hostname:
            config["hostname"] = hostname
        config.update(extra)
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    return make


@pytest.fixture
def run():
    return run_bundle
