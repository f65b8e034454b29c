"""A small harness over hyperfine: run hpcbox and its peers on the same input in one run,
print ratios, and keep the results table of each benchmark in docs/benchmarks.md.

Each benchmark script builds its inputs, then calls `compare()` with the commands to time
side by side, and `publish()` to replace its own section of the results document.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DOC = ROOT / "docs" / "benchmarks.md"


@dataclass
class Timing:
    label: str
    command: str
    median_s: float
    mean_s: float
    stddev_s: float
    runs: int
    times: list = field(default_factory=list)  # every run's seconds
    cpu_s: float = 0.0  # mean user + system CPU time (children included): steadier than wall time on a
    #                     shared machine, where other work delays a tool without using its CPU time


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}; run: sudo scripts/setup-debian --tests")


def workload_env() -> dict:
    """The environment for timed workloads: what a container's image gives its program (Debian's PATH), so
    that every tool runs a workload alike. The host's own settings would otherwise reach only the native
    and fakechroot/PRoot columns: with LANG=C.UTF-8, for one, `chroot ROOTFS ls /` opens 65 files, not 9."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update((key, os.environ[key]) for key in ("HOME", "TMPDIR") if key in os.environ)
    return env


def compare(
    commands: dict[str, str], *, prepare: str | None = None, runs: int = 10, warmup: int = 1,
    env: dict | None = None,
) -> list[Timing]:
    """Time every command with hyperfine in one invocation (same machine state for all); *env*: the
    commands' environment (default: this process's)."""
    require("hyperfine")
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-") as tmp:
        export = Path(tmp) / "hyperfine.json"
        argv = [shutil.which("hyperfine") or "hyperfine", "--style", "basic", "--runs", str(runs),
                "--warmup", str(warmup), "--export-json", str(export)]
        if prepare:
            argv += ["--prepare", prepare]
        for label, command in commands.items():
            argv += ["--command-name", label, command]
        subprocess.run(argv, check=True, env=env)
        data = json.loads(export.read_text())
    return [
        Timing(label, cmd, statistics.median(r["times"]), r["mean"], r["stddev"] or 0.0, len(r["times"]),
               list(r["times"]), float(r.get("user") or 0.0) + float(r.get("system") or 0.0))
        for r, (label, cmd) in zip(data["results"], commands.items())
    ]


def interleaved(commands: dict[str, str], *, runs: int = 10, warmup: int = 1, prepare: str | None = None,
                shell: bool = False, env: dict | None = None) -> list[Timing]:
    """Like compare(), but one run of each command in turn, *runs* rounds: on a shared machine a change
    of load then hits every column alike instead of whichever command hyperfine was timing. Each round
    starts one command further on, so that no command always runs right after the same other one
    (whose traces in caches or in the CPU's clock it would otherwise always inherit). *prepare*
    (a shell command, not timed) runs before every run; CPU time is user + system of the run's
    processes (those it waited for). *shell*: run the commands through /bin/sh (same cost for all).
    *env*: the commands' environment (default: this process's)."""
    import resource
    import shlex
    import time

    argvs = {label: (command if shell else shlex.split(command)) for label, command in commands.items()}
    times: dict = {label: [] for label in commands}
    cpus: dict = {label: [] for label in commands}
    labels = list(argvs)
    for round_ in range(warmup + runs):
        turn = round_ % len(labels)
        for label in labels[turn:] + labels[:turn]:
            argv = argvs[label]
            if prepare:
                subprocess.run(prepare, shell=True, check=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(argv, shell=shell, check=True, stdout=subprocess.DEVNULL, env=env)
            elapsed = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if round_ >= warmup:
                times[label].append(elapsed)
                cpus[label].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return [Timing(label, commands[label], statistics.median(t), statistics.mean(t),
                   statistics.stdev(t) if len(t) > 1 else 0.0, len(t), list(t), statistics.mean(cpus[label]))
            for label, t in times.items()]


def quartiles(values: list) -> tuple:
    """(25th, 75th) percentile of *values* (both the value itself when there is one)."""
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def table(timings: list[Timing], baseline: str) -> str:
    """Markdown table with each command's median and its ratio to the baseline's median."""
    base = next(t for t in timings if t.label == baseline).median_s
    base_cpu = next(t for t in timings if t.label == baseline).cpu_s or 1.0
    lines = [f"| command | median | 25-75% | mean ± sd | runs | ratio to {baseline} | CPU (user+sys) | "
             "CPU ratio |", "|---|---|---|---|---|---|---|---|"]
    for t in timings:
        low, high = quartiles(t.times or [t.median_s])
        lines.append(
            f"| {t.label} | {t.median_s * 1000:.1f} ms | {low * 1000:.1f}-{high * 1000:.1f} ms | "
            f"{t.mean_s * 1000:.1f} ± {t.stddev_s * 1000:.1f} ms"
            f" | {t.runs} | {t.median_s / base:.2f}x | {t.cpu_s * 1000:.1f} ms | {t.cpu_s / base_cpu:.2f}x |"
        )
    return "\n".join(lines)


def hpcbox_binary() -> str:
    """The `hpcbox` to measure: ``$HPCBOX_BENCH_BIN``, else the first on PATH; refused when it is an
    editable install of this checkout (each start then pays 10-40 ms for the editable finders), unless
    ``HPCBOX_BENCH_EDITABLE=1``. `hatch run python bench/X.py` puts the workspace env first on PATH, and
    that env's hpcbox is editable: name the regular install with
    ``HPCBOX_BENCH_BIN=$(hatch env find alone.cli)/bin/hpcbox``."""
    found = os.environ.get("HPCBOX_BENCH_BIN") or shutil.which("hpcbox")
    if not found or not os.access(found, os.X_OK):
        sys.exit(f"bench: no hpcbox at {found or 'any PATH entry'}; "
                 "set HPCBOX_BENCH_BIN to the hpcbox to measure")
    if install_kind(found) == "editable" and os.environ.get("HPCBOX_BENCH_EDITABLE") != "1":
        sys.exit(f"bench: {found} is an editable install of this checkout (10-40 ms more per start than "
                 "users get); set HPCBOX_BENCH_BIN=$(hatch env find alone.cli)/bin/hpcbox, or "
                 "HPCBOX_BENCH_EDITABLE=1 to measure it anyway")
    return found


def install_kind(hpcbox: str) -> str:
    """"editable" when *hpcbox*'s interpreter imports the CLI from this checkout's sources, else "regular"."""
    with open(hpcbox, "rb") as handle:
        first = handle.readline()
    python = first[2:].decode().split()[0] if first.startswith(b"#!") else sys.executable
    where = subprocess.run([python, "-c", "import hpcbox.quick as q; print(q.__file__)"], check=True,
                           capture_output=True, text=True).stdout.strip()
    return "editable" if Path(where).resolve().is_relative_to(ROOT / "packages") else "regular"


def machine() -> str:
    cores = os.cpu_count()
    return f"{platform.system()} {platform.release()}, {cores} cores, Python {platform.python_version()}"


def publish(section: str, body: str) -> None:
    """Replace (or append) the section `## <section>` of docs/benchmarks.md."""
    start, end = f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"
    block = f"{start}\n## {section}\n\n{body.strip()}\n{end}"
    doc = RESULTS_DOC.read_text() if RESULTS_DOC.exists() else "# Benchmarks\n"
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    RESULTS_DOC.write_text(doc)
    print(f"bench: results written to {RESULTS_DOC.relative_to(ROOT)} (section '{section}')")


def loglog_svg(series: dict, path: Path, title: str, x_label: str, y_label: str) -> None:
    """Lines of (x, y) points on log-log axes, one per series {label: {x: y}}, drawn as plain SVG (as
    distribution_svg: no plotting library on the bench machine); ticks at the powers of ten."""
    width, height, left, right, top, bottom = 760, 420, 70, 190, 40, 50
    xs = [x for points in series.values() for x in points]
    ys = [y for points in series.values() for y in points.values() if y > 0]
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    px = lambda x: left + (width - left - right) * (math.log10(x) - x0) / max(1, x1 - x0)  # noqa: E731
    py = lambda y: height - bottom - (height - top - bottom) * (math.log10(y) - y0) / max(1, y1 - y0)  # noqa: E731
    mid = (width - right + left) / 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{mid}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<text x="{mid}" y="{height - 8}" text-anchor="middle">{x_label}</text>',
           f'<text x="14" y="{(height - bottom + top) / 2}" text-anchor="middle" '
           f'transform="rotate(-90 14 {(height - bottom + top) / 2})">{y_label}</text>']
    for e in range(x0, x1 + 1):
        out.append(f'<line x1="{px(10 ** e):.1f}" y1="{top}" x2="{px(10 ** e):.1f}" y2="{height - bottom}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{px(10 ** e):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                   f'1e{e}</text>')
    for e in range(y0, y1 + 1):
        out.append(f'<line x1="{left}" y1="{py(10 ** e):.1f}" x2="{width - right}" y2="{py(10 ** e):.1f}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py(10 ** e) + 4:.1f}" text-anchor="end">{10.0 ** e:g}</text>')
    colours = ("#000000", "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
    for i, (label, points) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(points.items()) if y > 0)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        ly = top + 10 + 18 * i
        out.append(f'<line x1="{width - right + 10}" y1="{ly}" x2="{width - right + 30}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{width - right + 36}" y="{ly + 4}">{label}</text>')
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def distribution_svg(timings: list[Timing], path: Path, title: str) -> None:
    """A box plot of each command's run times (5th, 25th, 50th, 75th, 95th percentile, and every run
    as a dot), drawn as plain SVG: no plotting library needed on the machine that runs the bench."""
    width, left, row = 760, 250, 34
    height = 50 + row * len(timings) + 30
    top_ms = max(max(t.times) for t in timings) * 1000 * 1.05
    x = lambda ms: left + (width - left - 20) * ms / top_ms  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    step = 10 ** max(0, len(str(int(top_ms / 5))) - 1)
    tick = 0.0
    while tick <= top_ms:
        out.append(f'<line x1="{x(tick):.1f}" y1="35" x2="{x(tick):.1f}" y2="{height - 30}" stroke="#ddd"/>')
        out.append(f'<text x="{x(tick):.1f}" y="{height - 12}" text-anchor="middle">{tick:g} ms</text>')
        tick += step * (5 if top_ms / step > 20 else 1)
    for i, t in enumerate(timings):
        y = 50 + row * i + row / 2
        ms = sorted(v * 1000 for v in t.times)
        p = lambda q, ms=ms: ms[min(len(ms) - 1, int(q * (len(ms) - 1) + 0.5))]  # noqa: E731
        out.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{t.label}</text>')
        out.append(f'<line x1="{x(p(0.05)):.1f}" y1="{y}" x2="{x(p(0.95)):.1f}" y2="{y}" stroke="#333"/>')
        out.append(f'<rect x="{x(p(0.25)):.1f}" y="{y - 9}" width="{max(1.0, x(p(0.75)) - x(p(0.25))):.1f}" '
                   'height="18" fill="#9cc3e6" stroke="#333"/>')
        out.append(f'<line x1="{x(p(0.5)):.1f}" y1="{y - 9}" x2="{x(p(0.5)):.1f}" y2="{y + 9}" '
                   'stroke="#c00" stroke-width="2"/>')
        out += [f'<circle cx="{x(v):.1f}" cy="{y}" r="1.5" fill="#333" fill-opacity="0.35"/>' for v in ms]
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
