"""bench: a big image, built on the spot: Debian 12 (the minbase tarball of the test inputs) plus a few
hundred MB of Debian packages in separate layers (Go, a JDK, Python with numpy/scipy/OpenBLAS and
gfortran, LLVM/clang, then a layer that whites out /usr/share/doc as slimmed images do): six gzip
layers, 1 GB+ unpacked. Then, side by side in one hyperfine run each:

- pull from a loopback registry: `hpcbox pull` vs `skopeo copy docker://… oci:…` (target ≤ 0.8x skopeo);
- create: `hpcbox create` vs GNU tar extracting the same layer blobs in order (`tar -xzf` each, whiteouts
  not applied: less work than hpcbox does) and `umoci unpack --rootless` (target ≤ 0.5x GNU tar).

    hatch run python bench/bigimage.py [--runs 5] [--workdir /dev/shm]

The packages come from Debian's mirror with `apt-get download` (or from /var/cache/apt/archives when the
same version is there), are unpacked with `dpkg-deb -x`, made into layers with GNU tar and assembled
with `umoci raw add-layer`; the layout is kept in ~/.cache/hpcbox-bench/ for the next run. Run as an
ordinary user after `sudo scripts/setup-debian --tests`. Results go to docs/benchmarks.md, section
"big image".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from hpcbox_testing.images import TestImages, blob_path, top_descriptor  # noqa: E402
from hpcbox_testing.registry import start_registry  # noqa: E402

LAYERS = [
    ["golang-1.19-go", "golang-1.19-src"],
    ["openjdk-17-jre-headless", "openjdk-17-jdk-headless"],
    ["python3.11-minimal", "libpython3.11-stdlib", "python3-numpy", "python3-scipy", "libopenblas0-pthread",
     "gfortran-12", "libgfortran-12-dev"],
    ["libllvm14", "libclang-cpp14", "clang-14"],
]
TAG = "big"


def _run(argv: List[str], **kwargs) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:3])}... failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def _debs(packages: List[str], into: Path) -> List[Path]:
    """The .deb files of *packages* (candidate versions): from apt's cache when there, else downloaded."""
    into.mkdir(parents=True, exist_ok=True)
    found, missing = [], []
    for name in packages:
        version = _run(["apt-cache", "policy", name]).split("Candidate:")[1].split()[0]
        arch = _run(["apt-cache", "show", f"{name}={version}"]).split("Architecture:")[1].split()[0]
        deb = f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
        cached = Path("/var/cache/apt/archives") / deb
        if (into / deb).exists():
            found.append(into / deb)
        elif cached.exists():
            shutil.copy(cached, into / deb)
            found.append(into / deb)
        else:
            missing.append((name, version, into / deb))
    if missing:
        _run(["apt-get", "download", *[f"{n}={v}" for n, v, _ in missing]], cwd=into)
        found += [path for _, _, path in missing]
    return found


def build(cache: Path) -> Path:
    """The OCI layout of the big image (built once, then reused from *cache*)."""
    key = hashlib.sha256(json.dumps(LAYERS).encode()).hexdigest()[:12]
    layout = cache / f"bigimage-{key}"
    if (layout / "index.json").exists():
        return layout
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bigimage-", dir=cache))
    try:
        tars = []
        base = work / "layer0.tar"
        _run(["sh", "-c", f"gzip -dc {shlex.quote(str(TestImages().input_path('debian12-minbase.tar.gz')))} "
                          f"> {shlex.quote(str(base))}"])
        tars.append(base)
        for i, packages in enumerate(LAYERS, 1):
            root = work / f"layer{i}"
            root.mkdir()
            for deb in _debs(packages, cache / "debs"):
                _run(["dpkg-deb", "-x", str(deb), str(root)])
            tars.append(work / f"layer{i}.tar")
            _run(["tar", "--format=posix", "-C", str(root), "-cf", str(tars[-1]), "."])
            shutil.rmtree(root)
        slim = work / "slim"  # whiteouts, as `RUN rm -rf /usr/share/doc` leaves them
        (slim / "usr/share").mkdir(parents=True)
        (slim / "usr/share/.wh.doc").touch()
        (slim / "etc").mkdir()
        (slim / "etc/bench-image").write_text("big image for hpcbox's benchmarks\n")
        tars.append(work / "slim.tar")
        _run(["tar", "--format=posix", "-C", str(slim), "-cf", str(tars[-1]), "."])
        tmp_layout = work / "layout"
        umoci = shutil.which("umoci") or "umoci"
        image = f"{tmp_layout}:{TAG}"
        _run([umoci, "init", "--layout", str(tmp_layout)])
        _run([umoci, "new", "--image", image])
        for tar in tars:
            _run([umoci, "raw", "add-layer", "--image", image, str(tar)])
            tar.unlink()
        _run([umoci, "config", "--image", image, "--os", "linux", "--architecture", "amd64",
              "--config.cmd", "/bin/sh", "--config.env",
              "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        _run([umoci, "gc", "--layout", str(tmp_layout)])
        tmp_layout.rename(layout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return layout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", metavar="DIR", help="where stores and outputs go (default: $TMPDIR)")
    parser.add_argument("--cache", metavar="DIR", default=str(Path.home() / ".cache" / "hpcbox-bench"))
    args = parser.parse_args()
    harness.require("docker-registry", "skopeo", "umoci", "tar", "apt-get", "dpkg-deb")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    layout = build(cache)
    manifest = json.loads(blob_path(layout, top_descriptor(layout, TAG)["digest"]).read_bytes())
    blobs = [blob_path(layout, layer["digest"]) for layer in manifest["layers"]]
    packed = sum(b.stat().st_size for b in blobs)
    unpacked = sum(int(_run(["sh", "-c", f"gzip -dc {shlex.quote(str(b))} | wc -c"])) for b in blobs)
    hpcbox = harness.hpcbox_binary()
    q = shlex.quote
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-big-", dir=args.workdir) as tmp:
        work = Path(tmp)
        with start_registry("http", work / "registry") as registry:
            ref = f"{registry.host}/bench/big:1"
            _run(["skopeo", "copy", "--quiet", *registry.skopeo_dest_args(), f"oci:{layout}:{TAG}",
                  f"docker://{ref}"])
            store, oci = work / "pull-home", work / "skopeo-oci"
            pull = harness.interleaved(
                {"hpcbox pull": f"{q(hpcbox)} --home {q(str(store))} pull -q {q(ref)}",
                 "skopeo copy": f"skopeo copy -q --src-tls-verify=false docker://{q(ref)} "
                                f"oci:{q(str(oci))}:big"},
                prepare=f"rm -rf {q(str(store))} {q(str(oci))}", runs=args.runs, shell=True)
            home = work / "home"
            _run([hpcbox, "--home", str(home), "pull", "-q", ref])
        tar_dir, bundle, containers = work / "tar-out", work / "umoci-bundle", home / "containers"
        # (as a user, GNU tar cannot mknod the base layer's /dev nodes and exits 2: accepted)
        untar = "; ".join(f"{{ tar -xzf {q(str(b))} -C {q(str(tar_dir))} || test $? -eq 2; }}" for b in blobs)
        create = harness.interleaved(
            {"hpcbox create": f"{q(hpcbox)} --home {q(str(home))} create -q {q(ref)}",
             "GNU tar -xzf, layer by layer": f"{{ {untar}; }} 2>/dev/null",
             "umoci unpack --rootless":
                 f"umoci unpack --rootless --image {q(str(layout))}:{TAG} {q(str(bundle))}"},
            prepare=(f"chmod -R u+rwx {q(str(tar_dir))} {q(str(bundle))} {q(str(containers))} 2>/dev/null; "
                     f"rm -rf {q(str(tar_dir))} {q(str(bundle))} {q(str(containers))}; "
                     f"mkdir -p {q(str(tar_dir))}"),
            runs=args.runs, shell=True)
        fs = _run(["df", "--output=fstype", str(work)]).split()[-1]
        subprocess.run(["chmod", "-R", "u+rwx", str(work)], check=False)
    pull_t = {t.label: t.median_s for t in pull}
    create_t = {t.label: t.median_s for t in create}
    body = (f"A Debian 12 image built on the spot: the minbase tarball, then {len(LAYERS)} layers of Debian "
            f"packages (Go; a JDK; Python, numpy, scipy, OpenBLAS, gfortran; LLVM/clang; unpacked with "
            f"`dpkg-deb -x`, made into layers with GNU tar, assembled with `umoci raw add-layer`) and a "
            f"layer whiting out /usr/share/doc: {len(blobs)} gzip layers, {packed / 1e6:.0f} MB of blobs, "
            f"{unpacked / 1e9:.2f} GB "
            f"unpacked.\n\nMachine: {harness.machine()}; outputs on {fs}; load average {load:.1f} at the "
            f"start; the tools run in turn, one run of each per round (25-75%: the middle half of the runs; "
            f"CPU: user + system time of the tool's processes, the steadier figure on a shared "
            f"machine).\n\n"
            f"### pull\n\nFrom a loopback `docker-registry` (plain HTTP), empty destination each run: "
            f"`hpcbox pull` **{pull_t['hpcbox pull'] / pull_t['skopeo copy']:.2f}x** skopeo's time (target "
            f"≤ 0.8x).\n\n{harness.table(pull, baseline='skopeo copy')}\n\n"
            f"### create\n\nEvery output deleted before each run; GNU tar extracts the same blobs one after "
            f"the "
            f"other (whiteouts not applied). `hpcbox create` "
            f"**{create_t['hpcbox create'] / create_t['GNU tar -xzf, layer by layer']:.2f}x** GNU tar's time "
            f"(target ≤ 0.5x).\n\n{harness.table(create, baseline='GNU tar -xzf, layer by layer')}\n")
    print(body)
    harness.publish("big image", body)


if __name__ == "__main__":
    main()
