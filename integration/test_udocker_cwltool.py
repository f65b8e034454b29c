"""The CWL reference runner (cwltool, from PyPI) drives hpcbox as its user-space Docker.

cwltool special-cases a command whose path contains ``udocker``: it sends
``CMD --quiet run --nobanner --volume=HOST:DEST ... --workdir=OUT --rm --env=... IMAGE ARGS`` and never
pulls (``run`` pulls a missing image itself); under any other name it sends the same without
``--quiet --nobanner``. Both names run the same workflow here, against images in the loopback registry:
file names with colons and spaces, the working directory, the environment, stdin/stdout/stderr
capture (the step's captured stderr must hold only what the program wrote, also while ``run`` pulls),
an ENTRYPOINT image, a pull on first run and ``--rm`` (``--leave-container`` keeps the container).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_common import hpcbox_env

cwltool = pytest.importorskip("cwltool", reason="cwltool is a test dependency (hatch.toml)")

TOOL_HEADER = "cwlVersion: v1.2\nclass: CommandLineTool\n"


def _docker(image: str) -> str:
    return f"requirements:\n  DockerRequirement:\n    dockerPull: {image}\n"


def _write_workflow(directory: Path, busybox: str, stdio_image: str, entry_image: str) -> Path:
    """One workflow, one step per feature; the stdio step's image is pulled by its own `run`."""
    tools = {
        "stdio.cwl": TOOL_HEADER + _docker(stdio_image) + """
inputs:
  text: File
baseCommand: [sh, -c, 'tr a-z A-Z; echo to-stderr >&2']
stdin: $(inputs.text.path)
stdout: out.txt
stderr: err.txt
outputs:
  out: stdout
  err: stderr
""",
        "colons.cwl": TOOL_HEADER + _docker(busybox) + """
inputs:
  odd: File
  dir: Directory
baseCommand: [sh, -c]
arguments: ['cat "$0"; ls "$1"', $(inputs.odd.path), $(inputs.dir.path)]
stdout: colons.txt
outputs:
  out: stdout
""",
        "workdir_env.cwl": TOOL_HEADER + _docker(busybox) + """  EnvVarRequirement:
    envDef:
      GREETING: "hello: world"
inputs: []
baseCommand: [sh, -c]
arguments: ['pwd; echo "$0"; echo "$GREETING"; echo "$HOME"; echo made > made.txt', $(runtime.outdir)]
stdout: where.txt
outputs:
  out: stdout
  made:
    type: File
    outputBinding:
      glob: made.txt
""",
        "entry.cwl": TOOL_HEADER + _docker(entry_image) + """
inputs: []
arguments: [from-cwl]
stdout: entry.txt
outputs:
  out: stdout
""",
    }
    for name, text in tools.items():
        (directory / name).write_text(text)
    workflow = directory / "all.cwl"
    workflow.write_text("""cwlVersion: v1.2
class: Workflow
inputs:
  text: File
  odd: File
  dir: Directory
outputs:
  stdio_out: {type: File, outputSource: stdio/out}
  stdio_err: {type: File, outputSource: stdio/err}
  colons_out: {type: File, outputSource: colons/out}
  where: {type: File, outputSource: workdir_env/out}
  made: {type: File, outputSource: workdir_env/made}
  entry_out: {type: File, outputSource: entry/out}
steps:
  stdio:
    run: stdio.cwl
    in: {text: text}
    out: [out, err]
  colons:
    run: colons.cwl
    in: {odd: odd, dir: dir}
    out: [out]
  workdir_env:
    run: workdir_env.cwl
    in: []
    out: [out, made]
  entry:
    run: entry.cwl
    in: []
    out: [out]
""")
    return workflow


def _entrypoint_image(registry, test_images, work: Path) -> str:
    """busybox with ENTRYPOINT ["/bin/busybox", "echo", "entry:"], pushed to the loopback registry."""
    layout = work / "entry-layout"
    shutil.copytree(test_images.layout("busybox"), layout)
    umoci = shutil.which("umoci") or "umoci"
    entrypoint = [a for word in ("/bin/busybox", "echo", "entry:") for a in ("--config.entrypoint", word)]
    subprocess.run([umoci, "config", "--image", f"{layout}:latest", *entrypoint,
                    "--config.cmd", "from-image"], check=True)
    ref = f"{registry.host}/hpcbox/cwl-entry:1"
    subprocess.run([shutil.which("skopeo") or "skopeo", "copy", "--quiet", *registry.skopeo_dest_args(),
                    f"oci:{layout}:latest", f"docker://{ref}"], check=True, capture_output=True)
    return ref


@pytest.fixture(scope="module")
def cwl_setup(registry_http, test_images, tmp_path_factory):
    work = tmp_path_factory.mktemp("cwl")
    busybox = registry_http.push("busybox", "hpcbox/cwl-busybox", "1").ref
    stdio = registry_http.push("busybox", "hpcbox/cwl-stdio", "1").ref
    entry = _entrypoint_image(registry_http, test_images, work)
    workflow = _write_workflow(work, busybox, stdio, entry)
    inputs = work / "inputs"
    (inputs / "dir with space:and colon").mkdir(parents=True)
    (inputs / "dir with space:and colon" / "member:1").write_text("m\n")
    (inputs / "A:Gln2Cys").write_text("odd name\n")
    (inputs / "text.txt").write_text("lower case\n")
    job = work / "job.json"
    job.write_text(json.dumps({
        "text": {"class": "File", "path": str(inputs / "text.txt")},
        "odd": {"class": "File", "path": str(inputs / "A:Gln2Cys")},
        "dir": {"class": "Directory", "path": str(inputs / "dir with space:and colon")},
    }))
    return workflow, job, {"busybox": busybox, "stdio": stdio, "entry": entry}


def _command(tmp_path_factory, name: str) -> Path:
    """A command called *name* that runs this environment's hpcbox console script of that role."""
    scripts = Path(sys.executable).parent
    target = scripts / ("hpcbox-udocker" if name == "udocker" else "hpcbox")
    assert target.exists(), f"{target} is missing: the hpcbox package installs it"
    directory = tmp_path_factory.mktemp(f"bin-{name}")
    link = directory / name
    link.symlink_to(target)
    return link


def _cwltool(command: Path, workflow: Path, job: Path, out: Path, home: Path, *extra: str):
    env = hpcbox_env(HPCBOX_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "cwltool", "--quiet", "--relax-path-checks",
                           f"--user-space-docker-cmd={command}",
                           f"--outdir={out}", f"--tmpdir-prefix={out.parent}/tmp-",
                           f"--tmp-outdir-prefix={out.parent}/outtmp-", *extra, str(workflow), str(job)],
                          capture_output=True, text=True, env=env, timeout=900, check=False)


def _hpcbox(home: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "hpcbox", "--home", str(home), *args], capture_output=True,
                          text=True, env=hpcbox_env(), check=True)
    return proc.stdout


@pytest.mark.parametrize("name", ["udocker", "hpcbox"])
def test_cwltool_runs_a_workflow_through_hpcbox(name, cwl_setup, tmp_path_factory):
    workflow, job, images = cwl_setup
    command = _command(tmp_path_factory, name)
    assert ("udocker" in str(command)) == (name == "udocker")  # cwltool's switch for --quiet --nobanner
    work = tmp_path_factory.mktemp(f"run-{name}")
    home, out = work / "store", work / "out"
    proc = _cwltool(command, workflow, job, out, home)
    assert proc.returncode == 0, f"cwltool failed ({proc.returncode}):\n{proc.stderr[-6000:]}"
    result = json.loads(proc.stdout)
    assert all(result.values()), f"outputs missing: {result}\n{proc.stderr[-6000:]}"

    def text(key: str) -> str:
        return Path(result[key]["path"]).read_text()

    assert text("stdio_out") == "LOWER CASE\n"
    assert text("stdio_err") == "to-stderr\n"  # no pull progress, notes or banner: the program's own only
    assert text("colons_out").splitlines() == ["odd name", "member:1"]
    pwd, outdir, greeting, home_in = text("where").splitlines()
    assert pwd == outdir == home_in and outdir.startswith("/")  # --workdir and HOME are cwltool's outdir
    assert greeting == "hello: world"
    assert text("made") == "made\n"  # written in the working directory, collected from the host side
    assert text("entry_out") == "entry: from-cwl\n"  # the image's ENTRYPOINT, cwltool's arguments as CMD
    assert "downloaded" not in proc.stderr and "hpcbox: note" not in proc.stderr
    pulled = {tag for image in json.loads(_hpcbox(home, "images", "--json")) for tag in image["tags"]}
    assert set(images.values()) <= pulled  # each image pulled by `run` on its first use
    assert _hpcbox(home, "ps", "-q") == ""  # cwltool's --rm removed every container


def test_cwltool_leave_container_keeps_them(cwl_setup, tmp_path_factory):
    workflow, job, _ = cwl_setup
    command = _command(tmp_path_factory, "udocker")
    work = tmp_path_factory.mktemp("run-leave")
    home = work / "store"
    proc = _cwltool(command, workflow, job, work / "out", home, "--leave-container")
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert len(_hpcbox(home, "ps", "-q").split()) == 4  # one container per step, none removed
    assert os.listdir(home / "containers")
