"""`rigserve bench serve` end to end on a tiny repository: every row, the floors, the verdicts."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from rigserve.bench import serve


def _args(repo: Path, **over: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    args = parser.parse_args(["--repo", str(repo)])
    for k, v in over.items():
        setattr(args, k, v)
    return args


def test_bench_serve_reports_every_client_the_floors_and_each_target(
        tiny_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(tiny_repo, subset="lidar+wifi", requests=24, concurrency="1,2",
                 clients="kserve_binary,kserve_json,kserve_grpc,rig_stream", stream_window=2,
                 soak_seconds=1.0, perf_analyzer=False)
    assert serve.run(args) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")][1:]
    names = [r.split("|")[1].strip() for r in rows]
    assert names[0] == "floor (ORT run, batch 1)"
    for client in ("kserve_binary", "kserve_json", "kserve_grpc", "rig_stream"):
        assert names.count(client) == 2  # one per concurrency level
    assert "stream floor (decode+preprocess+run)" in names
    assert "transport only: http GET /v2/health/live" in names
    assert "transport only: grpc ServerLive" in names
    assert "rig_stream, 1 stream, window 2" in names
    assert "bare grpcio (no rigserve): kserve_grpc" in names
    header_line = next(line for line in out.splitlines() if line.startswith("| client |"))
    header = [c.strip() for c in header_line.split("|")]
    cells = {n: [c.strip() for c in r.split("|")] for n, r in zip(names, rows, strict=True)}
    cpu = {n: c[header.index("server CPU ms/req")] for n, c in cells.items()}
    client = {n: c[header.index("client CPU ms/req")] for n, c in cells.items()}
    assert cpu["floor (ORT run, batch 1)"] == "n/a"  # floors run outside the server
    assert cpu["stream floor (decode+preprocess+run)"] == "n/a"
    assert client["floor (ORT run, batch 1)"] == "n/a"
    # The server's CPU clock ticks at 10 ms: summed over the rows it has certainly moved.
    assert sum(float(v) for v in cpu.values() if v != "n/a") > 0
    assert all(float(client[n]) > 0 for n in names if n.startswith(("kserve", "rig_stream")))
    verdicts = [line for line in out.splitlines() if line.startswith("- ")]
    expected = ["KServe binary p50 at concurrency 1", "gRPC unary p50 at concurrency 1",
                "KServe binary throughput at concurrency 2",
                "gRPC unary throughput at concurrency 2", "rig stream:", "soak 1 s",
                "bare grpcio at concurrency 1"]
    assert len(verdicts) == len(expected)
    for line, start in zip(verdicts, expected, strict=True):
        assert line.startswith(f"- {start}"), line
    for line in verdicts[:-1]:  # targets; the bare line bounds one of them
        assert re.search(r": (PASS|FAIL)", line), line
    assert "0 errors" in verdicts[4]
    assert re.search(r"fully busy cores would sustain at most \d+ frames/s", verdicts[4])
    bare_p50 = float(cells["bare grpcio (no rigserve): kserve_grpc"][header.index("p50 ms")])
    said = re.search(r"p50 ([\d.]+) ms with the fastest client .* target is "
                     r"(within|out of) reach", verdicts[-1])
    assert said, verdicts[-1]
    assert float(said.group(1)) == pytest.approx(bare_p50, rel=0.01)  # the table rounds


def test_perf_analyzer_rows_come_from_the_real_tool(tiny_repo: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from rigserve.bench import _perf_analyzer

    reason = _perf_analyzer.locate()
    if isinstance(reason, str):
        pytest.skip(reason)
    args = _args(tiny_repo, subset="lidar", requests=30, concurrency="1",
                 clients="kserve_binary", stream_window=0, transport=False)
    assert serve.run(args) == 0
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[2:-1]]
            for r in capsys.readouterr().out.splitlines() if r.startswith("| ")}
    for name in ("perf_analyzer http", "perf_analyzer grpc",
                 "bare grpcio (no rigserve): perf_analyzer grpc"):
        concurrency, p50, _, _, per_s, _, cpu, client_cpu = rows[name]
        assert concurrency == "1"
        assert float(p50) > 0
        assert float(per_s) > 0
        assert cpu != "n/a"  # requests counted from the server's own statistics
        assert float(client_cpu) > 0  # perf_analyzer's own CPU, as a child process


def test_cpu_seconds_of_a_process_grow_with_its_work() -> None:
    before = serve._cpu_s(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert serve._cpu_s(os.getpid()) > before


def test_an_unknown_client_is_refused_by_name(tiny_repo: Path) -> None:
    with pytest.raises(SystemExit, match="unknown client 'nope'; known: kserve_binary"):
        serve.run(_args(tiny_repo, clients="nope", requests=2, concurrency="1",
                        stream_window=0))


def test_latency_plot_is_a_png_of_every_client(tmp_path: Path) -> None:
    rows = [serve.Row(c, n, [0.001 * n] * 20, 0.02 * n) for c in ("kserve_binary", "rest_json")
            for n in (1, 4)]
    floor = serve.Row("floor", 1, [0.0005] * 20, 0.01)
    out = tmp_path / "img" / "lat.png"
    serve.plot_latency(rows, floor, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
