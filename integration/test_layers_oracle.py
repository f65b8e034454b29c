"""Oracle: the rootfs hpcbox_layers makes equals `umoci unpack --rootless` (and GNU tar for single-layer
images) of the same test image, entry by entry: names, types, symlink targets, hardlink groups, content
hashes and mode bits.

Differences that the layers README documents as fixes are normalised on the oracle's side before the
comparison, and nothing else is: files get u+rw, directories u+rwx, setuid/setgid bits go (and the sticky
bit of files), device nodes and FIFOs are skipped (so they are dropped from the oracle's tree).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, Tuple

import pytest
from hpcbox_testing.images import blob_path, top_descriptor

ORACLE_IMAGES = ["busybox", "layered", "debian12", "zstd"]


def _fixed_mode(mode: int, is_dir: bool) -> int:
    mode &= 0o7777
    if is_dir:
        return (mode & 0o1777) | 0o700
    return (mode & 0o777) | 0o600


def snapshot(root: Path) -> Dict[str, Tuple]:
    """path -> (type, mode, target-or-hash, hardlink group key) for every entry below *root*."""
    out: Dict[str, Tuple] = {}
    inodes: Dict[Tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            mode = st.st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                continue  # documented: device nodes and FIFOs are skipped
            if stat.S_ISLNK(mode):
                out[rel] = ("symlink", None, os.readlink(path), None)
            elif stat.S_ISDIR(mode):
                out[rel] = ("dir", _fixed_mode(mode, True), None, None)
            elif stat.S_ISREG(mode):
                readable = st.st_mode & stat.S_IRUSR
                if not readable:
                    os.chmod(path, stat.S_IMODE(mode) | stat.S_IRUSR)
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                if not readable:
                    os.chmod(path, stat.S_IMODE(mode))
                key = (st.st_dev, st.st_ino)
                group = inodes.setdefault(key, rel) if st.st_nlink > 1 else None
                out[rel] = ("file", _fixed_mode(mode, False), digest, group)
            else:
                out[rel] = ("other", stat.S_IFMT(mode), None, None)
    # a hardlink group is named by its first member in walk order; use the smallest name instead
    groups: Dict[str, list] = {}
    for rel, entry in out.items():
        if entry[3] is not None:
            groups.setdefault(entry[3], []).append(rel)
    for members in groups.values():
        name = min(members)
        for rel in members:
            kind, mode, digest, _ = out[rel]
            out[rel] = (kind, mode, digest, name)
    return out


def _unlock(root: Path) -> None:
    """Give every directory u+rwx so that pytest can delete what an oracle wrote."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | 0o700)


def _layers(layout: Path):
    manifest = json.loads(blob_path(layout, top_descriptor(layout)["digest"]).read_bytes())
    return [(blob_path(layout, d["digest"]), d["mediaType"]) for d in manifest["layers"]]


def _device_entries(layout: Path) -> set:
    """Names the image's layers declare as device nodes or FIFOs (read with tarfile, independently)."""
    names = set()
    for path, media_type in _layers(layout):
        if "zstd" in media_type:
            import zstandard

            with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream, \
                    tarfile.open(fileobj=stream, mode="r|") as tar:
                infos = [(i.name, i.isdev()) for i in tar]
        else:
            with tarfile.open(path, "r:*") as tar:
                infos = [(i.name, i.isdev()) for i in tar]
        for raw_name, is_dev in infos:
            name = (raw_name[2:] if raw_name.startswith("./") else raw_name).rstrip("/")
            if is_dev:
                names.add(name)
            else:
                names.discard(name)
    return names


def _ours(layout: Path, target: Path) -> Tuple[Dict[str, Tuple], set]:
    from hpcbox_layers import Layer, apply_layers

    report = apply_layers(target, [Layer(path, media_type) for path, media_type in _layers(layout)])
    assert report.layers == len(_layers(layout))
    skipped = {n[2:] if n.startswith("./") else n for n in report.skipped_devices}
    assert skipped == _device_entries(layout)
    return snapshot(target), skipped


def _drop_devices(theirs: Dict[str, Tuple], devices: set) -> Dict[str, Tuple]:
    """umoci --rootless leaves an empty regular file where a device node was (a bind-mount target):
    that is its way of skipping them. Only that exact shape is dropped."""
    empty = hashlib.sha256(b"").hexdigest()
    for name in devices:
        entry = theirs.get(name)
        if entry is not None:
            assert entry[0] == "file" and entry[2] == empty, (name, entry)
            del theirs[name]
    return theirs


def _diff(ours: Dict[str, Tuple], theirs: Dict[str, Tuple]) -> list:
    problems = []
    for name in sorted(set(ours) | set(theirs)):
        a, b = ours.get(name), theirs.get(name)
        if a != b:
            problems.append(f"{name}: hpcbox_layers {a} != oracle {b}")
    return problems


@pytest.mark.parametrize("image", ORACLE_IMAGES)
def test_equals_umoci_unpack(image, test_images, tmp_path):
    if not shutil.which("umoci"):
        pytest.fail("umoci is not installed (Debian package umoci)")
    layout = test_images.layout(image)
    ours, devices = _ours(layout, tmp_path / "ours")
    bundle = tmp_path / "bundle"
    source = layout
    if any("zstd" in media_type for _, media_type in _layers(layout)):
        # umoci 0.4.7 cannot read tar+zstd: give it the same layers recompressed as gzip by skopeo
        source = tmp_path / "gzip-layout"
        subprocess.run(["skopeo", "copy", "--dest-compress", "--dest-compress-format", "gzip",
                        f"oci:{layout}:latest", f"oci:{source}:latest"], capture_output=True, check=True)
        assert all("gzip" in media_type for _, media_type in _layers(source))
    result = subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{source}:latest", str(bundle)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    try:
        theirs = _drop_devices(snapshot(bundle / "rootfs"), devices)
    finally:
        _unlock(bundle)
    assert len(ours) > 3
    problems = _diff(ours, theirs)
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("image", ["busybox", "debian12", "zstd"])
def test_single_layer_equals_gnu_tar(image, test_images, tmp_path):
    layout = test_images.layout(image)
    layers = _layers(layout)
    assert len(layers) == 1
    ours, devices = _ours(layout, tmp_path / "ours")
    out = tmp_path / "tar"
    out.mkdir()
    # GNU tar detects gzip and zstd from the file; as an ordinary user mknod fails (exit 2), as documented
    result = subprocess.run(["tar", "--no-same-owner", "-xpf", str(layers[0][0]), "-C", str(out)],
                            capture_output=True, text=True, check=False)
    other = [line for line in result.stderr.splitlines()
             if "mknod" not in line and "Exiting with" not in line]
    assert result.returncode in (0, 2) and not other, result.stderr
    try:
        theirs = snapshot(out)  # devices: skipped by snapshot() when tar (as root) made them
        assert not (devices & set(theirs))
    finally:
        _unlock(out)
    problems = _diff(ours, theirs)
    assert not problems, "\n".join(problems[:40])
