"""Triton's perf_analyzer, unmodified, measures rigserve over HTTP and gRPC.

perf_analyzer reads the model's metadata and configuration, sends binary tensors, and
reads Triton's statistics before and after each window to split the server's latency;
it refuses to report when those statistics do not move the way Triton's do. The binary
ships in the tritonclient wheel; it needs libb64 (Debian's libb64-0d) and libcudart
(the nvidia-cuda-runtime-cu12 wheel), which `make install` provides.
"""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rigserve.bench._perf_analyzer import PerfAnalyzer, locate
from tests.server.live_server import ServerHandle, serve_in_thread


def _perf_analyzer() -> PerfAnalyzer:
    """The binary, in an environment it loads in; skips, saying why, when it cannot run."""
    found = locate()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="module")
def both(tiny_repo: Path) -> Iterator[ServerHandle]:
    with serve_in_thread(tiny_repo, grpc=True) as handle:
        yield handle


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_perf_analyzer_measures_rig_with_server_side_statistics(
        both: ServerHandle, protocol: str, tmp_path: Path) -> None:
    pa = _perf_analyzer()
    port = both.http_port if protocol == "http" else both.grpc_port
    report = tmp_path / "report.csv"
    # No -x: perf_analyzer must find the version itself from the statistics.
    cmd = [pa.exe, "-m", "rig", "-u", f"127.0.0.1:{port}", "-i", protocol,
           "--input-data", "zero", "--concurrency-range", "1:2",
           "--measurement-mode", "count_windows", "--measurement-request-count", "40",
           "--stability-percentage", "100", "--max-trials", "5", "-f", str(report)]
    run = subprocess.run(cmd, capture_output=True, text=True, env=pa.env, timeout=180,
                         check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Server:" in run.stdout
    assert "Successful request count" in run.stdout
    rows = list(csv.DictReader(report.open()))
    assert [r["Concurrency"] for r in rows] == ["1", "2"]
    for r in rows:
        assert float(r["Inferences/Second"]) > 0
        assert int(r["Server Compute Infer"]) > 0  # microseconds, from our statistics
