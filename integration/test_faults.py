"""Fault injection: hpcbox against a registry whose replies are cut, corrupted, stalled or refused, a
process killed at random points of pull/create/rm/rmi, a full disk, and hostile or malformed layers.

Each fault either is survived (the command succeeds, the store is valid) or ends in one line with
the documented exit code and nothing half-made listed; after any of them the next commands work.
Real components only: Debian's docker-registry on 127.0.0.1 behind ``hpcbox_testing.proxy.FaultProxy``,
the real CLI in subprocesses. Bounded in count and time (about a minute in all here).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from hpcbox_testing.proxy import Fault, FaultProxy
from test_cli_common import assert_store_valid, hpcbox, hpcbox_env, images, ok, one_error

# short timeouts and few retries: the faults below are noticed in seconds (not 1 s: a loaded CI
# machine may take that long for a healthy reply, and three of them in a row fail a pull)
FAST = {"HPCBOX_REGISTRY_TIMEOUT": "2", "HPCBOX_REGISTRY_RETRIES": "2"}


@pytest.fixture(scope="module")
def pushed(registry_http):
    return registry_http.push("busybox", "hpcbox/faults", "1")


def _run(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return hpcbox(home, *args, env=hpcbox_env(**FAST, **extra), timeout=120)


def _ref(proxy: FaultProxy, pushed) -> str:
    return f"{proxy.host}/{pushed.ref.split('/', 1)[1]}"


def _nothing_listed(home: Path) -> None:
    assert images(home) == []
    assert json.loads(ok(hpcbox(home, "ps", "--json")).stdout) == []


# -- the network ---------------------------------------------------------------------------------------

# Faults count what they did: each test makes its own (a second run in one process starts afresh)
SURVIVED = {
    "manifest-cut": lambda: [Fault("cut", "/manifests/", after=0)],
    "manifest-corrupt-by-digest": lambda: [Fault("corrupt", "/manifests/sha256:", after=10)],
    "config-cut": lambda: [Fault("cut", "/blobs/", after=100)],  # resolve: the config before any layer
    "config-corrupt": lambda: [Fault("corrupt", "/blobs/", after=5)],
    "config-and-layer-stalled": lambda: [Fault("stall", "/blobs/", times=2, after=200, seconds=4)],
    "layer-cut": lambda: [Fault("cut", "/blobs/", times=2, after=300_000)],
    "refused-twice": lambda: [Fault("refuse", "/v2/", times=2)],
}


@pytest.mark.parametrize("name", sorted(SURVIVED))
def test_one_fault_is_survived_and_the_store_is_whole(registry_http, pushed, tmp_path, name):
    home = tmp_path / "home"
    faults = SURVIVED[name]()
    with FaultProxy(registry_http.host, faults) as proxy:
        ref = _ref(proxy, pushed)
        if "by-digest" in name:  # only a manifest pulled by digest can be checked
            ref = f"{ref.rsplit(':', 1)[0]}@{pushed.digest}"
        result = _run(home, "pull", "-q", ref)
    assert result.returncode == 0, (proxy.log, result.stderr)
    assert all(f.done == f.times for f in faults), proxy.log  # the faults did happen
    listed = images(home)
    assert len(listed) == 1 and ref in listed[0]["tags"] + listed[0].get("digests", [ref]), listed
    assert_store_valid(home)
    ok(_run(home, "verify", ref))


PERSISTENT = {
    "corrupt": (lambda: Fault("corrupt", "/blobs/", times=99, after=5), 6, "does not match its digest"),
    "cut": (lambda: Fault("cut", "/manifests/", times=99, after=0), 5, "connection closed after 0 bytes"),
    "refused": (lambda: Fault("refuse", "/v2/", times=99), 5, "check the registry address"),
}


@pytest.mark.parametrize("name", sorted(PERSISTENT))
def test_a_fault_that_persists_is_one_line_and_nothing_listed(registry_http, pushed, tmp_path, name):
    make_fault, code, words = PERSISTENT[name]
    fault = make_fault()
    home = tmp_path / "home"
    with FaultProxy(registry_http.host, [fault]) as proxy:
        result = _run(home, "pull", _ref(proxy, pushed))
    assert words in one_error(result, code)
    assert 2 <= fault.done <= 10  # retried, and not for ever
    if (home / "images").exists():
        _nothing_listed(home)
        assert_store_valid(home)


# the tag list reads its body inside the request: cut, stalled past the timeout, or not JSON, it is
# asked for again (the corrupt byte is the first one: the reply then does not parse)
TAG_LIST_FAULTS = {
    "cut": lambda: Fault("cut", "/tags/list", after=5),
    "stalled": lambda: Fault("stall", "/tags/list", after=5, seconds=8),  # well past the timeout
    "corrupt": lambda: Fault("corrupt", "/tags/list", after=0),
}


@pytest.mark.parametrize("name", sorted(TAG_LIST_FAULTS))
def test_a_tag_list_spoiled_once_is_asked_for_again(registry_http, pushed, tmp_path, name):
    fault = TAG_LIST_FAULTS[name]()
    with FaultProxy(registry_http.host, [fault]) as proxy:
        result = _run(tmp_path / "home", "search", "--list-tags", _ref(proxy, pushed).rsplit(":", 1)[0])
    assert result.returncode == 0, (proxy.log, result.stderr)
    assert result.stdout.split() == ["1"], result.stdout
    assert fault.done == 1
    asked = [kind for line, kind in proxy.log if "/tags/list" in line]
    assert asked == [fault.kind, None], proxy.log  # spoiled once, then asked for again


# -- SIGKILL at random points ------------------------------------------------------------------------------

KILL_ROUNDS = 12
KILL_BUDGET_S = 60


def _start(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hpcbox", "--home", str(home), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=hpcbox_env(**FAST), start_new_session=True)


def _consistent(home: Path) -> None:
    """What must work after any kill: list, verify or repair, prune, and a store that holds together."""
    listed = images(home) if (home / "images").exists() else []
    ok(hpcbox(home, "ps", "--json"))
    for image in listed:
        name = image["tags"][0] if image["tags"] else image["id"]
        if hpcbox(home, "verify", name).returncode != 0:  # a killed pull never lists a damaged image
            pytest.fail(f"{name} listed but damaged: {hpcbox(home, 'verify', name).stderr}")


def test_sigkill_at_random_points_leaves_a_store_that_works(registry_http, pushed, tmp_path):
    home = tmp_path / "home"
    rng = random.Random(int(os.environ.get("HPCBOX_FAULT_SEED", str(time.time_ns()))))
    # every blob pauses mid-body, so that a kill often lands inside a download
    stall = Fault("stall", "/blobs/", times=10_000, after=100_000, seconds=0.2)
    deadline = time.monotonic() + KILL_BUDGET_S
    rounds = []
    with FaultProxy(registry_http.host, [stall]) as proxy:
        ref = _ref(proxy, pushed)
        for _ in range(KILL_ROUNDS):
            if time.monotonic() > deadline:
                break
            have = {i["id"] for i in images(home)} if (home / "images").exists() else set()
            containers = json.loads(ok(hpcbox(home, "ps", "--json")).stdout)
            choices = ["pull"] + (["create", "rmi"] if have else []) + (["rm"] if containers else [])
            op = rng.choice(choices)
            args = {"pull": ["pull", "-q", ref], "create": ["create", "-q", ref], "rmi": ["rmi", "-f", ref],
                    "rm": ["rm", "-f", containers[0]["id"] if containers else ""]}[op]
            delay = rng.uniform(0.0, 0.6)
            proc = _start(home, *args)
            time.sleep(delay)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait(timeout=60)
            rounds.append((op, round(delay, 2), code))
            _consistent(home)
        # and after all that, everything still works
        ok(hpcbox(home, "prune"))
        ok(_run(home, "pull", "-q", ref))
        ok(_run(home, "verify", ref))
        cid = ok(_run(home, "create", ref)).stdout.strip()
    assert (home / "containers" / cid / "rootfs/bin/busybox").is_file(), rounds
    for c in json.loads(ok(hpcbox(home, "ps", "--json")).stdout):
        ok(hpcbox(home, "rm", c["id"]))
    ok(hpcbox(home, "rmi", "-f", ref))
    ok(hpcbox(home, "prune"))
    assert images(home) == [] and os.listdir(home / "containers") == [], rounds
    assert [p for p in os.listdir(home / "tmp") if not p.startswith(".")] == [], rounds
    assert os.listdir(home / "images" / "blobs" / "sha256") == [], rounds
    assert any(code == -signal.SIGKILL for _, _, code in rounds), rounds  # some kills hit a running command


# -- a full disk ---------------------------------------------------------------------------------------------

def test_create_on_a_full_disk_is_exit_7_and_leaves_nothing(registry_http, pushed):
    small = os.environ.get("HPCBOX_TEST_SMALL_FS")
    if not small or not os.access(small, os.W_OK):
        pytest.skip("needs the small tmpfs of scripts/setup-debian (HPCBOX_TEST_SMALL_FS)")
    home = Path(small) / f"hpcbox-faults-{os.getpid()}"
    filler = Path(small) / f"filler-faults-{os.getpid()}"
    try:
        ok(hpcbox(home, "pull", "-q", pushed.ref))
        st = os.statvfs(small)
        with open(filler, "wb") as handle:  # leave ~300 kB: less than the busybox rootfs
            remaining = max(st.f_bavail * st.f_frsize - 300_000, 0)
            chunk = bytes(1 << 20)
            while remaining > 0:
                remaining -= handle.write(chunk[: min(len(chunk), remaining)])
        line = one_error(hpcbox(home, "create", "--name", "full", pushed.ref), 7)
        assert "no space left on device" in line
        assert json.loads(ok(hpcbox(home, "ps", "--json")).stdout) == []
        assert [p.name for p in (home / "containers").iterdir()] == []  # the half container is gone
        filler.unlink()
        ok(hpcbox(home, "create", "--name", "full", pushed.ref))
        assert_store_valid(home)
    finally:  # the small filesystem is shared by every run of the suite: leave it empty
        shutil.rmtree(home, ignore_errors=True)
        if filler.exists():
            filler.unlink()


# -- hostile and malformed layers -------------------------------------------------------------------------

def _tar(entries) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "lying-size":  # the header promises more than the archive holds
                info.size = 1 << 20
                return out.getvalue() + info.tobuf(format=tarfile.GNU_FORMAT) + data
            else:
                info.type = tarfile.LNKTYPE
                info.linkname = data
                tar.addfile(info)
    return out.getvalue()


def _push_layer(registry, work: Path, repo: str, layer: bytes) -> str:
    """An image of one gzip layer (built by hand: no tool would write these) pushed with skopeo."""
    layout = work / "layout"

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs/sha256").mkdir(parents=True, exist_ok=True)
        (layout / "blobs/sha256" / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/ok"]},
              "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           **blob(json.dumps(config).encode())},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            **blob(gzip.compress(layer, mtime=0))}]}
    top = {"mediaType": manifest["mediaType"], **blob(json.dumps(manifest).encode()),
           "annotations": {"org.opencontainers.image.ref.name": "1"}}
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    ref = f"{registry.host}/{repo}:1"
    subprocess.run(["skopeo", "copy", "--quiet", *registry.skopeo_dest_args(), f"oci:{layout}:1",
                    f"docker://{ref}"], check=True, capture_output=True)
    return ref


@pytest.mark.parametrize("via", ["import", "registry"])
@pytest.mark.parametrize("entries, words", [
    ([("bin/ok", "file", b"ok"), ("../../../../tmp/hpcbox-evil-{pid}", "file", b"evil")], "unsafe entry"),
    ([("bin/ok", "file", b"ok"), ("/tmp/hpcbox-evil-{pid}", "file", b"evil")], "absolute name"),
    ([("bin/ok", "file", b"ok"), ("bin/link", "link", "bin/missing")], "bin/missing"),
    ([("bin/ok", "file", b"ok"), ("bin/big", "lying-size", b"0123456789")], "'bin/big' is truncated"),
], ids=["escape", "absolute", "hardlink-to-nothing", "size-that-lies"])
def test_hostile_or_malformed_layers_are_integrity_errors(registry_http, tmp_path, entries, words, via):
    home = tmp_path / "home"
    entries = [(n.format(pid=os.getpid()), k, d) for n, k, d in entries]
    if via == "import":
        layer = tmp_path / "layer.tar"
        layer.write_bytes(_tar(entries))
        ok(hpcbox(home, "import", str(layer), "local/bad:1"))
        ref = "local/bad:1"
    else:
        ref = _push_layer(registry_http, tmp_path, f"hpcbox/evil-{tmp_path.name.lower()}", _tar(entries))
        ok(hpcbox(home, "pull", "-q", ref))
    line = one_error(hpcbox(home, "create", ref), 6)
    assert words in line
    # the blob is intact: the image is at fault, and no repair is advised (none could help)
    assert "repair" not in line and "hpcbox pull" not in line, line
    ok(hpcbox(home, "verify", ref))
    assert not Path(f"/tmp/hpcbox-evil-{os.getpid()}").exists()
    assert json.loads(ok(hpcbox(home, "ps", "--json")).stdout) == []
    assert [p.name for p in (home / "containers").iterdir()] == []
