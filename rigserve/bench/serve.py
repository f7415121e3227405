"""Serving latency and throughput (REST, KServe v2 HTTP and gRPC, rig stream) vs the ORT floor.

Starts `rigserve serve REPO` as its own process on free loopback ports, drives it with
each load-generator client at several concurrencies (closed loop: every client sends its
next request when the previous answer arrives) and reports p50/p95/p99 latency,
throughput, the server process's CPU time per request (user + system, all threads:
unlike wall-clock figures it barely moves when other work shares the machine) and the
load generator's, since both share the machine the floor has to itself. In the
same run it measures the floor: ONNX Runtime's `run` on the same engine file with the
same threads at batch 1, no server. Targets (issues 5 and 6): at concurrency 1, KServe
binary p50 <= floor p50 + 1 ms and gRPC unary p50 <= floor p50 + 0.5 ms; at saturation
(the highest concurrency) KServe binary throughput >= 0.85 x the floor's. One rig stream
with a window of frames in flight must sustain >= 0.85 x its own floor: decode, validate,
preprocess and run each frame's MM-Fi files in one thread (the work the stream cannot
skip; the raw-ORT floor excludes it). `--soak-seconds` adds a long run that samples the
server's RSS (must stay < 400 MB and not grow); the stream's verdict also states the most
frames/s the cores could give at the CPU it measured per frame. Two kinds of rows explain
the rest: each protocol's round trip with no inference (a health probe: the fixed cost
every request pays on this machine), and Triton's perf_analyzer (C++) driving the same
model over HTTP and gRPC, whose client competes far less for the cores than a Python
one. A third kind bounds the gRPC target: gRPC unary at concurrency 1 against a bare
grpcio server on the same engine (`_bare_grpc`: decode, run, encode, nothing of
rigserve), the least any Python gRPC front end costs here. Client loops run on uvloop
when it is installed, so the load generator's own overhead stays small.

Clients live in a registry (:data:`CLIENTS`); the gRPC rows register theirs with
``CLIENTS.register``. A client makes one request per :meth:`LoadClient.call` over a
connection it keeps open.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rigserve.bench._clients import CLIENTS, TRANSPORT, LoadClient, Target
from rigserve.bench._report import markdown_table, percentiles_ms, write_section
from rigserve.serve_process import serve_process

RSS_LIMIT_MB = 400.0


# Importing the protocol modules registers their clients in CLIENTS.
from rigserve.bench import _grpc_load, _http_load  # noqa: E402, F401

# ---- measurement ------------------------------------------------------------------------


def _run(coro: Any) -> Any:
    """asyncio.run, on uvloop when installed (the generator's overhead is part of latency)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # Fields after the command name: utime and stime are the 12th and 13th (stat(5) 14, 15).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _closed_loop(factory: Callable[[], LoadClient], concurrency: int,
                       requests: int) -> tuple[list[float], float]:
    """``requests`` calls spread over ``concurrency`` clients; latencies and wall time."""
    clients = [factory() for _ in range(concurrency)]
    await asyncio.gather(*(c.open() for c in clients))
    for c in clients:  # one warm-up call each
        await c.call()
    latencies: list[float] = []
    remaining = requests

    async def run(client: LoadClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            await client.call()
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(run(c) for c in clients))
    wall = time.perf_counter() - t0
    await asyncio.gather(*(c.close() for c in clients))
    return latencies, wall


def floor_engine(repo: Path, subset: str, threads: int) -> Any:
    """The engine the server serves ``subset`` with, loaded with the same session options."""
    from rigserve.export.manifest import load_manifest
    from rigserve.server.engines import EngineOptions, load_engine
    from rigserve.server.repository import choose_entries

    entry = choose_entries(load_manifest(repo), ["fp16", "fp32", "int8"])[subset]
    return load_engine(entry.format, entry.name, repo / entry.path, EngineOptions(threads, 1))


def measure_floor(engine: Any, tensors: dict[str, np.ndarray], requests: int
                  ) -> tuple[list[float], float]:
    """Raw engine runs at batch 1, back to back; latencies and wall time."""
    for _ in range(10):
        engine.run(tensors)
    lat = []
    t0 = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        engine.run(tensors)
        lat.append(time.perf_counter() - t)
    return lat, time.perf_counter() - t0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


async def _soak(factory: Callable[[], LoadClient], seconds: float, pid: int
                ) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []
    clients = [factory() for _ in range(4)]
    await asyncio.gather(*(c.open() for c in clients))
    end = time.monotonic() + seconds

    async def run(c: LoadClient) -> None:
        while time.monotonic() < end:
            await c.call()

    async def sample() -> None:
        t0 = time.monotonic()
        while time.monotonic() < end:
            samples.append((time.monotonic() - t0, _rss_mb(pid)))
            await asyncio.sleep(max(0.2, seconds / 50))

    await asyncio.gather(sample(), *(run(c) for c in clients))
    await asyncio.gather(*(c.close() for c in clients))
    return samples


# ---- set-up -------------------------------------------------------------------------------


def synthetic_raw_frames(seed: int = 0) -> dict[str, np.ndarray]:
    """One raw frame per sensor with MM-Fi shapes and plausible values."""
    rng = np.random.default_rng(seed)
    return {
        "depth": rng.integers(500, 5000, size=(480, 640)).astype(np.uint16),
        "lidar": rng.normal([0.0, 0.0, 3.0], 0.4, size=(300, 3)),
        "mmwave": np.concatenate([rng.normal([0.0, 0.0, 3.0], 0.3, size=(40, 3)),
                                  rng.normal(0, 1, size=(40, 2))], axis=1),
        "wifi": rng.uniform(5, 40, size=(3, 114, 10)),
    }


def build_target(repo: Path, subset: str | None, http_port: int,
                 grpc_port: int | None) -> Target:
    from rigserve.export.manifest import load_manifest
    from rigserve.sensors.formats import encode_frame
    from rigserve.sensors.preprocess import PreprocessSpec, preprocess_frame

    manifest = load_manifest(repo)
    name = subset or "+".join(sorted(manifest.modalities))
    mods = name.split("+")
    spec = PreprocessSpec.from_dict(dict(manifest.preprocessing))
    raw = {m: a for m, a in synthetic_raw_frames().items() if m in mods}
    tensors = {manifest.modalities[m].input: preprocess_frame(m, raw[m], spec)[None]
               for m in mods}
    files = {m: encode_frame(m, raw[m]) for m in mods}
    return Target(http_port, grpc_port, name, tensors, files, raw)


# ---- CLI ----------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, required=True, help="model repository to serve")
    p.add_argument("--subset", default=None, help="sensor subset to send (default: all)")
    p.add_argument("--clients", default=",".join(CLIENTS),
                   help=f"load generators, comma-separated (known: {', '.join(CLIENTS)})")
    p.add_argument("--concurrency", default="1,4,16", help="comma-separated levels")
    p.add_argument("--requests", type=int, default=2000, help="requests per (client, level)")
    p.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (server+floor)")
    p.add_argument("--stream-window", type=int, default=4,
                   help="rig stream throughput row: frames in flight on one stream; 0 = skip")
    p.add_argument("--transport", action=argparse.BooleanOptionalAction, default=True,
                   help="rows for each protocol's no-inference round trip (health probes) "
                        "at concurrency 1: the fixed cost the inference rows include")
    p.add_argument("--bare", action=argparse.BooleanOptionalAction, default=True,
                   help="gRPC unary rows at concurrency 1 against a bare grpcio server on "
                        "the same engine (decode, run, encode, nothing else): the least a "
                        "Python gRPC front end costs on this machine")
    p.add_argument("--perf-analyzer", action=argparse.BooleanOptionalAction, default=True,
                   help="rows from Triton's perf_analyzer (C++ client) over HTTP and gRPC at "
                        "every level; skipped with the reason when it cannot run here")
    p.add_argument("--soak-seconds", type=float, default=0.0, help="RSS soak length; 0 = skip")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra `rigserve serve` argument (repeatable), e.g. --max-batch-size=16")
    p.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    p.add_argument("--plot", type=Path, default=Path("docs/img/serve_latency.png"),
                   help="latency plot written with --write (default %(default)s)")


@dataclass(frozen=True)
class Row:
    """One measured (client, concurrency) cell; the floor rows use the same shape.

    ``summary`` (p50, p95, p99 ms, requests/s) stands in for the samples when a tool
    reports only those (perf_analyzer); ``latencies_s`` is then empty.
    """

    client: str
    concurrency: int
    latencies_s: list[float]
    wall_s: float
    server_cpu_s: float = float("nan")  # floors run in this process: no server CPU
    summary: tuple[float, float, float, float] | None = None
    served: int = 0  # requests the server answered, for summary rows' CPU per request
    client_cpu_s: float = float("nan")  # the load generator's CPU over the row

    def percentiles_ms(self) -> list[float]:
        return list(self.summary[:3]) if self.summary else percentiles_ms(self.latencies_s)

    @property
    def p50_ms(self) -> float:
        return self.percentiles_ms()[0]

    @property
    def throughput(self) -> float:
        return self.summary[3] if self.summary else len(self.latencies_s) / self.wall_s

    def cpu_ms(self, seconds: float) -> float:
        """``seconds`` of CPU per request of this row, in ms (nan when not measured)."""
        n = self.served or len(self.latencies_s)
        return seconds / n * 1e3 if n else float("nan")

    def cells(self, floor: Row) -> list[object]:
        cpu = [("n/a" if np.isnan(v) else v) for v in
               (self.cpu_ms(self.server_cpu_s), self.cpu_ms(self.client_cpu_s))]
        return [self.client, self.concurrency, *self.percentiles_ms(),
                self.throughput, self.throughput / floor.throughput, *cpu]


HEADERS = ["client", "concurrency", "p50 ms", "p95 ms", "p99 ms", "req/s", "x floor",
           "server CPU ms/req", "client CPU ms/req"]

#: The issues' targets: (client, concurrency: "1" or "max", check against the floor row).
Check = Callable[[Row, Row], tuple[bool, str]]
TARGETS: list[tuple[str, str, Check]] = [
    ("kserve_binary", "1", lambda r, f: (
        r.p50_ms <= f.p50_ms + 1.0,
        f"KServe binary p50 at concurrency 1: {r.p50_ms:.3f} ms vs floor {f.p50_ms:.3f} + 1 ms")),
    ("kserve_grpc", "1", lambda r, f: (
        r.p50_ms <= f.p50_ms + 0.5,
        f"gRPC unary p50 at concurrency 1: {r.p50_ms:.3f} ms vs floor {f.p50_ms:.3f} + 0.5 ms")),
    ("kserve_binary", "max", lambda r, f: (
        r.throughput >= 0.85 * f.throughput,
        f"KServe binary throughput at concurrency {r.concurrency}: {r.throughput:.0f}/s vs "
        f"0.85 x floor {f.throughput:.0f}/s ({r.throughput / f.throughput:.2f} x)")),
    ("kserve_grpc", "max", lambda r, f: (
        r.throughput >= 0.85 * f.throughput,
        f"gRPC unary throughput at concurrency {r.concurrency}: {r.throughput:.0f}/s vs "
        f"0.85 x floor {f.throughput:.0f}/s ({r.throughput / f.throughput:.2f} x)")),
]


def _verdicts(rows: list[Row], floor: Row, levels: list[int]) -> list[str]:
    out = []
    for client, level, check in TARGETS:
        conc = max(levels) if level == "max" else int(level)
        for r in rows:
            if r.client == client and r.concurrency == conc:
                ok, text = check(r, floor)
                out.append(f"{text}: {'PASS' if ok else 'FAIL'}")
    return out


def _client_rows(args: argparse.Namespace, target: Target, pid: int) -> list[Row]:
    rows: list[Row] = []
    levels = [int(c) for c in args.concurrency.split(",")]
    for name in args.clients.split(","):
        for conc in levels:
            cpu0, own0 = _cpu_s(pid), time.process_time()
            lat, wall = _run(_closed_loop(lambda n=name: CLIENTS[n](target), conc,
                                          args.requests))
            rows.append(Row(name, conc, lat, wall, _cpu_s(pid) - cpu0,
                            client_cpu_s=time.process_time() - own0))
    return rows


def _transport_rows(args: argparse.Namespace, target: Target, pid: int) -> list[Row]:
    """Each protocol's round trip with no inference, at concurrency 1."""
    rows = []
    for name, factory in TRANSPORT.items():
        if target.grpc_port is None and name.startswith("grpc"):
            continue
        cpu0, own0 = _cpu_s(pid), time.process_time()
        lat, wall = _run(_closed_loop(lambda f=factory: f(target), 1, args.requests))
        rows.append(Row(f"transport only: {name}", 1, lat, wall, _cpu_s(pid) - cpu0,
                        client_cpu_s=time.process_time() - own0))
    return rows


def _children_cpu_s() -> float:
    """User + system CPU of this process's finished children (perf_analyzer runs)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _served(http_port: int) -> int:
    """Requests the server has answered on ``rig`` (Triton statistics), over HTTP."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/models/rig/stats") as r:
        stats = json.load(r)["model_stats"][0]["inference_stats"]
    return int(stats["success"]["count"])


def _perf_analyzer_rows(args: argparse.Namespace, target: Target, pid: int
                        ) -> tuple[list[Row], str | None]:
    """perf_analyzer (Triton's C++ load generator) over HTTP and gRPC at every level."""
    if not args.perf_analyzer:
        return [], None
    from rigserve.bench import _perf_analyzer

    pa = _perf_analyzer.locate()
    if isinstance(pa, str):
        return [], f"perf_analyzer rows skipped: {pa}"
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    for protocol, port in (("http", target.http_port), ("grpc", target.grpc_port)):
        if port is None:
            continue
        for level in levels:
            rows.append(_perf_analyzer_row(
                pa, f"perf_analyzer {protocol}", protocol=protocol, port=port, level=level,
                requests=args.requests, tensors=target.tensors, pid=pid,
                served=lambda: _served(target.http_port)))
    return rows, None


def _perf_analyzer_row(pa: Any, name: str, *, protocol: str, port: int, level: int,
                       requests: int, tensors: dict[str, np.ndarray], pid: int,
                       served: Callable[[], int]) -> Row:
    """One perf_analyzer run against the server ``pid`` (``served``: its answered count)."""
    from rigserve.bench import _perf_analyzer

    cpu0, n0, kids0 = _cpu_s(pid), served(), _children_cpu_s()
    res = _perf_analyzer.measure(pa, protocol=protocol, port=port, model="rig",
                                 tensors=tensors, concurrency=level, requests=requests)
    return Row(name, level, [], 0.0, _cpu_s(pid) - cpu0,
               summary=(res.p50_ms, res.p95_ms, res.p99_ms, res.throughput),
               served=served() - n0, client_cpu_s=_children_cpu_s() - kids0)


def _bare_rows(args: argparse.Namespace, target: Target, floor: Row
               ) -> tuple[list[Row], str | None]:
    """gRPC unary at concurrency 1 against a bare grpcio server on the same engine (see
    `_bare_grpc`): grpcio's own share of the latency, measured without rigserve."""
    if not args.bare or target.grpc_port is None:
        return [], None
    import dataclasses

    from rigserve.bench import _perf_analyzer
    from rigserve.bench._bare_grpc import bare_server, served_count

    rows = []
    with bare_server(args.repo, args.subset, args.threads) as (proc, port):
        bare = dataclasses.replace(target, grpc_port=port)
        cpu0, own0 = _cpu_s(proc.pid), time.process_time()
        lat, wall = _run(_closed_loop(lambda: CLIENTS["kserve_grpc"](bare), 1, args.requests))
        rows.append(Row("bare grpcio (no rigserve): kserve_grpc", 1, lat, wall,
                        _cpu_s(proc.pid) - cpu0, client_cpu_s=time.process_time() - own0))
        pa = _perf_analyzer.locate() if args.perf_analyzer else "--no-perf-analyzer"
        if not isinstance(pa, str):
            rows.append(_perf_analyzer_row(
                pa, "bare grpcio (no rigserve): perf_analyzer grpc", protocol="grpc",
                port=port, level=1, requests=args.requests, tensors=target.tensors,
                pid=proc.pid, served=lambda: served_count(port)))
    best = min(r.p50_ms for r in rows)
    limit = floor.p50_ms + 0.5
    note = (f"bare grpcio at concurrency 1 (decode, run, encode; nothing of rigserve): "
            f"p50 {best:.3f} ms with the fastest client vs floor {floor.p50_ms:.3f} + 0.5 ms "
            f"= {limit:.3f} ms: the gRPC unary target is "
            f"{'within' if best <= limit else 'out of'} reach of a Python gRPC front end here")
    return rows, note


def _stream_rows(args: argparse.Namespace, target: Target, engine: Any, pid: int
                 ) -> tuple[list[Row], str | None]:
    """One rig stream with a window of frames in flight, and the stream's own floor."""
    if args.stream_window <= 0 or target.grpc_port is None or "rig_stream" not in CLIENTS:
        return [], None
    from rigserve.bench._grpc_load import stream_vs_floor

    warm_cpu: list[float] = []  # the server's CPU once the stream's warm-up is answered
    fl, got = stream_vs_floor(args.repo, engine, target.files, target.grpc_port,
                              n_frames=max(50, args.requests // 2), window=args.stream_window,
                              on_warm=lambda: warm_cpu.append(_cpu_s(pid)))
    floor = Row("stream floor (decode+preprocess+run)", 1, fl.latencies_s, fl.duration_s)
    row = Row(f"rig_stream, 1 stream, window {args.stream_window}", 1, got.latencies_s,
              got.duration_s, _cpu_s(pid) - warm_cpu[0], client_cpu_s=got.client_cpu_s)
    # Answered frames only: a dropped frame was not sustained.
    ok = row.throughput >= 0.85 * floor.throughput and got.errors == 0
    # What the cores could give at best: every core busy, server + client CPU per frame.
    per_frame_ms = row.cpu_ms(row.server_cpu_s) + row.cpu_ms(row.client_cpu_s)
    ceiling = (os.cpu_count() or 1) * 1e3 / per_frame_ms
    verdict = (f"rig stream: {len(got.latencies_s)} answered + {got.dropped} dropped in "
               f"{got.duration_s:.2f} s = {row.throughput:.0f} frames/s vs 0.85 x its floor "
               f"{floor.throughput:.0f} frames/s ({row.throughput / floor.throughput:.2f} x), "
               f"{got.errors} errors: {'PASS' if ok else 'FAIL'} (server + client CPU "
               f"{per_frame_ms:.2f} ms per frame: {os.cpu_count()} fully busy cores would "
               f"sustain at most {ceiling:.0f} frames/s = "
               f"{ceiling / floor.throughput:.2f} x the floor)")
    return [floor, row], verdict


def _soak_line(args: argparse.Namespace, soak: list[tuple[float, float]]) -> str:
    rss = [r for _, r in soak]
    half = len(rss) // 2
    growth = float(np.mean(rss[half:]) - np.mean(rss[:half])) if half else 0.0
    ok = max(rss) < RSS_LIMIT_MB and growth < 0.05 * max(rss)
    return (f"soak {args.soak_seconds:.0f} s: server RSS start {rss[0]:.0f} MB, max "
            f"{max(rss):.0f} MB, end {rss[-1]:.0f} MB, second-half minus first-half mean "
            f"{growth:+.1f} MB: {'PASS' if ok else 'FAIL'} (< {RSS_LIMIT_MB:.0f} MB, flat)")


def run(args: argparse.Namespace) -> int:
    from rigserve.bench._report import command_line

    levels = [int(c) for c in args.concurrency.split(",")]
    unknown = [n for n in args.clients.split(",") if n not in CLIENTS]
    if unknown:  # before the server starts: a typo should cost nothing
        raise SystemExit(f"unknown client {unknown[0]!r}; known: {', '.join(sorted(CLIENTS))}")
    server_args = ["--intra-op-threads", str(args.threads), *args.server_arg]
    with serve_process(args.repo, extra=server_args) as server:
        proc, http, grpc = server.proc, server.http_port, server.grpc_port
        target = build_target(args.repo, args.subset, http, grpc)
        engine = floor_engine(args.repo, target.subset, args.threads)
        floor = Row("floor (ORT run, batch 1)", 1, *measure_floor(engine, target.tensors,
                                                                  args.requests))
        rows = _client_rows(args, target, proc.pid)
        transport = _transport_rows(args, target, proc.pid) if args.transport else []
        tool_rows, tool_note = _perf_analyzer_rows(args, target, proc.pid)
        stream, stream_verdict = _stream_rows(args, target, engine, proc.pid)
        soak = (_run(_soak(lambda: CLIENTS["kserve_binary"](target), args.soak_seconds,
                           proc.pid)) if args.soak_seconds > 0 else [])
    bare, bare_note = _bare_rows(args, target, floor)  # the real server has stopped
    verdicts = _verdicts(rows, floor, levels)
    verdicts += [stream_verdict] if stream_verdict else []
    verdicts += [_soak_line(args, soak)] if soak else []
    verdicts += [tool_note] if tool_note else []
    verdicts += [bare_note] if bare_note else []
    table = markdown_table(HEADERS, [r.cells(floor) for r in
                                     [floor, *transport, *rows, *tool_rows, *bare, *stream]])
    body = (f"Subset `{target.subset}`, {args.threads} ORT thread(s), {args.requests} requests "
            f"per row, closed loop; `x floor` is throughput over the batch-1 ORT floor's (the "
            f"stream rows: frames/s).\n\n{table}\n\n" + "\n".join(f"- {v}" for v in verdicts))
    if args.write:
        plot_latency([*rows, *tool_rows], floor, args.plot)
        body += f"\n\n![latency per client and concurrency]({args.plot.as_posix()})"
    print(body)
    if args.write:
        write_section("serve", "Serving latency and throughput", body, command_line())
    return 0


def plot_latency(rows: list[Row], floor: Row, path: Path) -> None:
    """p50 (line) and p99 (dashed) latency against concurrency, per client, over the floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lat, ax_tput) = plt.subplots(1, 2, figsize=(11, 4))
    for client in dict.fromkeys(r.client for r in rows):
        mine = sorted((r for r in rows if r.client == client), key=lambda r: r.concurrency)
        conc = [r.concurrency for r in mine]
        line, = ax_lat.plot(conc, [r.p50_ms for r in mine], marker="o", label=client)
        ax_lat.plot(conc, [r.percentiles_ms()[2] for r in mine], ls="--",
                    color=line.get_color())
        ax_tput.plot(conc, [r.throughput for r in mine], marker="o", color=line.get_color())
    ax_lat.axhline(floor.p50_ms, color="k", lw=0.8, label="ORT floor p50")
    ax_tput.axhline(floor.throughput, color="k", lw=0.8)
    ax_lat.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="ms (p50 —, p99 - -)",
               title="request latency")
    ax_tput.set(xscale="log", xlabel="concurrency", ylabel="requests/s", title="throughput")
    ax_lat.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
