"""Triton's perf_analyzer as a load generator for `rigserve bench serve`.

perf_analyzer (C++, shipped in the tritonclient wheel) is the tool Triton users measure
with; its client costs far less CPU per request than any Python one, so its rows show
what the server does when the load generator is not competing for the same cores. It
needs libb64 (Debian's libb64-0d) and libcudart (the nvidia-cuda-runtime-cu12 wheel) to
load, even on a machine without a GPU; `make install` provides both.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class PerfAnalyzer:
    exe: str
    env: dict[str, str]


def locate() -> PerfAnalyzer | str:
    """The binary with an environment it loads in, or why it cannot run here."""
    exe = (shutil.which("perf_analyzer", path=str(Path(sys.executable).parent))
           or shutil.which("perf_analyzer"))
    if exe is None:
        return "perf_analyzer not found (it ships in the tritonclient wheel)"
    env = dict(os.environ)
    spec = importlib.util.find_spec("nvidia.cuda_runtime")
    if spec is not None and spec.submodule_search_locations:
        lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(lib), env.get("LD_LIBRARY_PATH")) if p)
    probe = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env,
                           timeout=30, check=False)
    if "error while loading shared libraries" in probe.stderr:
        return f"perf_analyzer cannot load: {probe.stderr.strip()}"
    return PerfAnalyzer(exe, env)


@dataclass(frozen=True)
class PerfResult:
    """One concurrency level as perf_analyzer reported it (its latencies are client-side)."""

    concurrency: int
    throughput: float  # inferences/s
    p50_ms: float
    p95_ms: float
    p99_ms: float


def input_data(tensors: dict[str, np.ndarray], path: Path) -> Path:
    """perf_analyzer's --input-data JSON for one batch-1 request of ``tensors``."""
    entry = {name: {"content": a.reshape(-1).tolist(), "shape": list(a.shape[1:])}
             for name, a in tensors.items()}
    path.write_text(json.dumps({"data": [entry]}))
    return path


def measure(pa: PerfAnalyzer, *, protocol: str, port: int, model: str,
            tensors: dict[str, np.ndarray], concurrency: int, requests: int) -> PerfResult:
    """One closed-loop run at ``concurrency`` (``requests`` per measurement window)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = input_data(tensors, Path(tmp) / "data.json")
        report = Path(tmp) / "report.csv"
        cmd = [pa.exe, "-m", model, "-u", f"127.0.0.1:{port}", "-i", protocol,
               "--input-data", str(data), "--concurrency-range", str(concurrency),
               "--measurement-mode", "count_windows",
               "--measurement-request-count", str(requests), "-f", str(report)]
        run = subprocess.run(cmd, capture_output=True, text=True, env=pa.env, timeout=600,
                             check=False)
        if run.returncode != 0:
            raise RuntimeError(f"perf_analyzer failed at concurrency {concurrency}: "
                               f"{(run.stdout + run.stderr)[-800:]}")
        (row,) = list(csv.DictReader(report.open()))
    return PerfResult(concurrency, float(row["Inferences/Second"]),
                      int(row["p50 latency"]) / 1e3, int(row["p95 latency"]) / 1e3,
                      int(row["p99 latency"]) / 1e3)
