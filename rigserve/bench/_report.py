"""Shared reporting for benchmarks: machine description and BENCHMARKS.md sections.

Each benchmark owns one section of BENCHMARKS.md between HTML comment markers, so
re-running a benchmark replaces its own figures and leaves the others alone.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_PATH = Path("BENCHMARKS.md")
_HEADER = (
    "# Benchmarks\n\n"
    "Every figure below was measured by the command printed with it, on the machine it names.\n"
    "These machines are shared and noisy: compare ratios within one run, not across runs.\n"
)


def machine_summary() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gib = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem_gib}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def command_line(argv: Sequence[str] | None = None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return "rigserve " + shlex.join(args)


def percentiles_ms(samples_s: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> list[float]:
    arr = np.asarray(samples_s, dtype=np.float64) * 1e3
    if arr.size == 0:
        return [float("nan")] * len(qs)
    return [float(np.percentile(arr, q)) for q in qs]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def peak_rss_mib() -> float:
    """Peak resident set size of this process (and waited-for children are separate)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_section(name: str, title: str, body: str, command: str,
                  path: Path = DEFAULT_PATH) -> None:
    """Replace (or append) the section `name` of BENCHMARKS.md."""
    stamp = _dt.date.today().isoformat()
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"Measured {stamp} on: {machine_summary()}.  \n"
        f"Command: `{command}`\n\n{body.strip()}\n<!-- /bench:{name} -->\n"
    )
    text = path.read_text() if path.exists() else _HEADER
    tag = re.escape(name)
    pattern = re.compile(rf"<!-- bench:{tag} -->.*?<!-- /bench:{tag} -->\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
