"""A small harness over hyperfine: run hpcbox and its peers on the same input in one run,
print ratios, and keep the results table of each benchmark in docs/benchmarks.md.

Each benchmark script builds its inputs, then calls `compare()` with the commands to time
side by side, and `publish()` to replace its own section of the results document.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
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


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}; run: sudo scripts/setup-debian --tests")


def compare(
    commands: dict[str, str], *, prepare: str | None = None, runs: int = 10, warmup: int = 1
) -> list[Timing]:
    """Time every command with hyperfine in one invocation (same machine state for all)."""
    require("hyperfine")
    with tempfile.TemporaryDirectory(prefix="hpcbox-bench-") as tmp:
        export = Path(tmp) / "hyperfine.json"
        argv = ["hyperfine", "--style", "basic", "--runs", str(runs), "--warmup", str(warmup),
                "--export-json", str(export)]
        if prepare:
            argv += ["--prepare", prepare]
        for label, command in commands.items():
            argv += ["--command-name", label, command]
        subprocess.run(argv, check=True)
        data = json.loads(export.read_text())
    return [
        Timing(label, cmd, statistics.median(r["times"]), r["mean"], r["stddev"] or 0.0, len(r["times"]))
        for r, (label, cmd) in zip(data["results"], commands.items())
    ]


def table(timings: list[Timing], baseline: str) -> str:
    """Markdown table with each command's median and its ratio to the baseline's median."""
    base = next(t for t in timings if t.label == baseline).median_s
    lines = ["| command | median | mean ± sd | runs | ratio to " + baseline + " |", "|---|---|---|---|---|"]
    for t in timings:
        lines.append(
            f"| {t.label} | {t.median_s * 1000:.1f} ms | {t.mean_s * 1000:.1f} ± {t.stddev_s * 1000:.1f} ms"
            f" | {t.runs} | {t.median_s / base:.2f}x |"
        )
    return "\n".join(lines)


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
