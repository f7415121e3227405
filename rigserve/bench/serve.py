"""Serving latency and throughput (REST JSON/multipart, KServe v2 binary) against the raw ORT floor.

Starts `rigserve serve REPO` as its own process on free loopback ports, drives it with
each load-generator client at several concurrencies (closed loop: every client sends its
next request when the previous answer arrives) and reports p50/p95/p99 latency and
throughput. In the same run it measures the floor: ONNX Runtime's `run` on the same
engine file with the same threads, no server. Targets: at concurrency 1, binary p50 <=
floor p50 + 1 ms; at saturation, throughput >= 0.85 x the floor's. `--soak-seconds`
adds a long run that samples the server's RSS (must stay < 400 MB and not grow).

Clients live in a registry (:data:`CLIENTS`); the gRPC rows register theirs with
:func:`register_client`. A client makes one request per :meth:`LoadClient.call` over a
connection it keeps open.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rigserve.bench._report import markdown_table, percentiles_ms, write_section

RSS_LIMIT_MB = 400.0


@dataclass(frozen=True)
class Target:
    """What a client needs: where the server is and what to send."""

    http_port: int
    grpc_port: int | None
    subset: str
    tensors: dict[str, np.ndarray]  # model-ready, batch 1, for the subset's inputs
    files: dict[str, bytes]  # MM-Fi file bytes per modality of the subset
    raw: dict[str, np.ndarray]  # decoded raw frames per modality of the subset


class LoadClient(Protocol):
    async def open(self) -> None: ...
    async def call(self) -> None: ...
    async def close(self) -> None: ...


CLIENTS: dict[str, Callable[[Target], LoadClient]] = {}


def register_client(name: str) -> Callable[[Callable[[Target], LoadClient]],
                                           Callable[[Target], LoadClient]]:
    def deco(factory: Callable[[Target], LoadClient]) -> Callable[[Target], LoadClient]:
        CLIENTS[name] = factory
        return factory
    return deco


class _HttpClient:
    """A minimal keep-alive HTTP/1.1 client: its own overhead is microseconds, not httpx's
    milliseconds, so the figures are the server's."""

    def __init__(self, port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}",
                *(f"{k}: {v}" for k, v in headers.items())]
        self._request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self._port = port

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        self._writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP,
                                                         socket.TCP_NODELAY, 1)

    async def call(self) -> None:
        self._writer.write(self._request)
        status = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self._reader.readexactly(length)
        if b" 200 " not in status:
            raise RuntimeError(f"server answered {status.decode().strip()}: {body[:200]!r}")

    async def close(self) -> None:
        self._writer.close()


def _kserve_body(tensors: dict[str, np.ndarray], binary: bool) -> tuple[bytes, dict[str, str]]:
    inputs, blobs = [], []
    for name, arr in tensors.items():
        spec: dict[str, Any] = {"name": name, "shape": list(arr.shape), "datatype": "FP32"}
        if binary:
            spec["parameters"] = {"binary_data_size": arr.nbytes}
            blobs.append(arr.tobytes())
        else:
            spec["data"] = arr.reshape(-1).tolist()
        inputs.append(spec)
    head = json.dumps({"inputs": inputs,
                       "parameters": {"binary_data_output": binary}}).encode()
    if not binary:
        return head, {"Content-Type": "application/json"}
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


@register_client("kserve_binary")
def _kserve_binary(t: Target) -> LoadClient:
    body, headers = _kserve_body(t.tensors, binary=True)
    return _HttpClient(t.http_port, "/v2/models/rig/infer", body, headers)


@register_client("kserve_json")
def _kserve_json(t: Target) -> LoadClient:
    body, headers = _kserve_body(t.tensors, binary=False)
    return _HttpClient(t.http_port, "/v2/models/rig/infer", body, headers)


@register_client("rest_json")
def _rest_json(t: Target) -> LoadClient:
    body = json.dumps({"frames": {m: a.tolist() for m, a in t.raw.items()}}).encode()
    return _HttpClient(t.http_port, "/v1/rigs/bench/infer", body,
                       {"Content-Type": "application/json"})


@register_client("rest_multipart")
def _rest_multipart(t: Target) -> LoadClient:
    boundary = "rigservebench"
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{m}\"; "
              f"filename=\"frame001\"\r\nContent-Type: application/octet-stream\r\n\r\n"
              ).encode() + data + b"\r\n" for m, data in t.files.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return _HttpClient(t.http_port, "/v1/rigs/bench/infer", body,
                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def _register_optional_clients() -> None:
    """gRPC rows (kserve_grpc, rig_stream) when the grpc extras are installed."""
    try:
        from rigserve.bench._grpc_load import register_grpc_clients
    except ImportError:
        return
    register_grpc_clients(register_client)


_register_optional_clients()


# ---- measurement ------------------------------------------------------------------------


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


def measure_floor(repo: Path, subset: str, tensors: dict[str, np.ndarray], threads: int,
                  requests: int) -> tuple[list[float], float]:
    """Raw ONNX Runtime on the server's engine file, same session options, batch 1."""
    from rigserve.export.manifest import load_manifest
    from rigserve.server.engines import EngineOptions, OrtEngine
    from rigserve.server.repository import choose_entries

    entry = choose_entries(load_manifest(repo), ["fp32", "fp16", "int8"])[subset]
    engine = OrtEngine(entry.name, repo / entry.path, EngineOptions(threads, 1))
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@contextmanager
def running_server(repo: Path, threads: int, extra: list[str]) -> Any:
    """`rigserve serve` in its own process, ready, on free ports."""
    import httpx

    http_port, grpc_port = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "rigserve", "serve", str(repo), "--host", "127.0.0.1",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port),
           "--intra-op-threads", str(threads), "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(cmd)}")
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield proc, http_port, grpc_port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ---- CLI ----------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", type=Path, required=True, help="model repository to serve")
    p.add_argument("--subset", default=None, help="sensor subset to send (default: all)")
    p.add_argument("--clients", default=",".join(CLIENTS),
                   help=f"load generators, comma-separated (known: {', '.join(CLIENTS)})")
    p.add_argument("--concurrency", default="1,4,16", help="comma-separated levels")
    p.add_argument("--requests", type=int, default=2000, help="requests per (client, level)")
    p.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (server+floor)")
    p.add_argument("--soak-seconds", type=float, default=0.0, help="RSS soak length; 0 = skip")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra `rigserve serve` argument (repeatable), e.g. --max-batch-size=16")
    p.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")


def _rows(args: argparse.Namespace, target: Target, floor_p50: float, floor_tput: float
          ) -> tuple[list[list[object]], list[str]]:
    rows: list[list[object]] = []
    verdicts: list[str] = []
    levels = [int(c) for c in args.concurrency.split(",")]
    for name in args.clients.split(","):
        if name not in CLIENTS:
            raise SystemExit(f"unknown client {name!r}; known: {', '.join(CLIENTS)}")
        for conc in levels:
            lat, wall = asyncio.run(_closed_loop(lambda n=name: CLIENTS[n](target), conc,
                                                 args.requests))
            p50, p95, p99 = percentiles_ms(lat)
            tput = len(lat) / wall
            rows.append([name, conc, p50, p95, p99, tput, tput / floor_tput])
            if name == "kserve_binary" and conc == 1:
                ok = p50 <= floor_p50 + 1.0
                verdicts.append(f"binary p50 at concurrency 1: {p50:.3f} ms vs floor "
                                f"{floor_p50:.3f} + 1 ms: {'PASS' if ok else 'FAIL'}")
            if name == "kserve_binary" and conc == max(levels):
                ok = tput >= 0.85 * floor_tput
                verdicts.append(f"saturation throughput {tput:.0f}/s vs 0.85 x floor "
                                f"{floor_tput:.0f}/s: {'PASS' if ok else 'FAIL'}")
    return rows, verdicts


def run(args: argparse.Namespace) -> int:
    from rigserve.bench._report import command_line

    with running_server(args.repo, args.threads, args.server_arg) as (proc, http, grpc):
        target = build_target(args.repo, args.subset, http, grpc)
        floor_lat, floor_wall = measure_floor(args.repo, target.subset, target.tensors,
                                              args.threads, args.requests)
        floor_p50 = percentiles_ms(floor_lat)[0]
        floor_tput = len(floor_lat) / floor_wall
        rows, verdicts = _rows(args, target, floor_p50, floor_tput)
        f50, f95, f99 = percentiles_ms(floor_lat)
        rows.insert(0, ["floor (ORT run)", 1, f50, f95, f99, floor_tput, 1.0])
        soak = (asyncio.run(_soak(lambda: CLIENTS["kserve_binary"](target), args.soak_seconds,
                                  proc.pid)) if args.soak_seconds > 0 else [])
    table = markdown_table(["client", "concurrency", "p50 ms", "p95 ms", "p99 ms", "req/s",
                            "x floor"], rows)
    body = f"Subset `{target.subset}`, {args.threads} ORT thread(s), {args.requests} requests " \
           f"per row, closed loop.\n\n{table}\n\n" + "\n".join(f"- {v}" for v in verdicts)
    if soak:
        rss = [r for _, r in soak]
        half = len(rss) // 2
        growth = float(np.mean(rss[half:]) - np.mean(rss[:half])) if half else 0.0
        ok = max(rss) < RSS_LIMIT_MB and growth < 0.05 * max(rss)
        body += (f"\n- soak {args.soak_seconds:.0f} s: server RSS start {rss[0]:.0f} MB, max "
                 f"{max(rss):.0f} MB, end {rss[-1]:.0f} MB, second-half minus first-half mean "
                 f"{growth:+.1f} MB: {'PASS' if ok else 'FAIL'} (< {RSS_LIMIT_MB:.0f} MB, flat)")
    print(body)
    if args.write:
        write_section("serve", "Serving latency and throughput", body, command_line())
    return 0
