"""umoci (`unpack --rootless`) as an independent oracle on a small image with every kind of change."""

import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hpcbox_oci_bundle import mediatypes as media
from layers_testkit import (
    canonical,
    dir_,
    file,
    fixed_mode,
    hardlink,
    opaque,
    snapshot_tree,
    symlink,
    tar_bytes,
)
from layers_testkit import whiteout as wh

from hpcbox_layers import apply_layers

pytestmark = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")

LAYERS = [
    [
        dir_("etc", 0o755, 1_500_000_000),
        file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644, 1_500_000_001),
        file("etc/shadow", b"root:*::::::\n", 0o000, 1_500_000_002),
        dir_("usr", 0o755, 1_500_000_003),
        dir_("usr/bin", 0o755, 1_500_000_004),
        file("usr/bin/su", b"\x7fELF su", 0o4755, 1_500_000_005),
        hardlink("usr/bin/su2", "usr/bin/su"),
        symlink("bin", "usr/bin", 1_500_000_006),
        symlink("etc/abs", "/etc/passwd", 1_500_000_007),
        dir_("var", 0o755, 1_500_000_008),
        dir_("var/cache", 0o700, 1_500_000_009),
        file("var/cache/a", b"a", 0o600, 1_500_000_010),
        dir_("var/cache/sub", 0o755, 1_500_000_011),
        file("var/cache/sub/b", b"b", 0o644, 1_500_000_012),
        dir_("tmp", 0o1777, 1_500_000_013),
    ],
    [
        wh("etc/passwd"),
        file("etc/new", b"new", 0o640, 1_600_000_000),
        file("var/cache/c", b"c", 0o644, 1_600_000_001),
        opaque("var/cache"),
        hardlink("etc/shadow-", "etc/shadow"),
        dir_("usr/bin", 0o750, 1_600_000_002),
        file("usr/bin/tool", b"tool", 0o755, 1_600_000_003),
    ],
    [
        file("tmp", b"file over dir", 0o644, 1_700_000_000),
        wh("etc/abs"),
        dir_("var", 0o755, 1_700_000_001),
        symlink("usr/bin/su", "tool", 1_700_000_002),
    ],
]


def make_image(root: Path, blobs):
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True)

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        (blobs_dir / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    diff_ids = [f"sha256:{hashlib.sha256(b).hexdigest()}" for b in blobs]
    layers = [dict(put(gzip.compress(b)), mediaType=media.OCI_LAYER_GZIP) for b in blobs]
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    mt_config = "application/vnd.oci.image.config.v1+json"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(put(json.dumps(config).encode()), mediaType=mt_config),
        "layers": layers,
    }
    entry = dict(put(json.dumps(manifest).encode()), mediaType=manifest["mediaType"])
    entry["annotations"] = {"org.opencontainers.image.ref.name": "t"}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return [root / "blobs" / "sha256" / layer["digest"].split(":")[1] for layer in layers]


def readable(root: Path):
    """Give every file u+rw and every directory u+rwx, keeping mtimes; return the modes before."""
    modes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                continue
            modes[os.path.relpath(full, root)] = stat.S_IMODE(st.st_mode)
            os.chmod(full, stat.S_IMODE(st.st_mode) | (0o700 if stat.S_ISDIR(st.st_mode) else 0o600))
    return modes


def test_same_tree_as_umoci_after_the_documented_fixes(tmp_path):
    blobs = [tar_bytes(layer) for layer in LAYERS]
    paths = make_image(tmp_path / "image", blobs)
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{tmp_path / 'image'}:t", str(tmp_path / "bundle")],
        check=True,
        capture_output=True,
    )
    apply_layers(tmp_path / "ours", [(p, media.OCI_LAYER_GZIP) for p in paths])
    rootfs = tmp_path / "bundle" / "rootfs"
    modes = readable(rootfs)  # as an ordinary user, umoci leaves 0000 files that we could not compare
    theirs = {}
    for path, (kind, _mode, content, mtime, ino) in snapshot_tree(str(rootfs)).items():
        # umoci keeps setuid bits and unreadable modes; we document their removal
        fixed = None if kind == "symlink" else fixed_mode(modes[path], kind == "dir")
        theirs[path] = (kind, fixed, content, mtime, ino)
    assert canonical(snapshot_tree(str(tmp_path / "ours"))) == canonical(theirs)
    assert "etc/passwd" not in theirs and "var/cache/a" not in theirs  # the oracle did apply whiteouts
