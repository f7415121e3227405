"""The gRPC load generators `rigserve bench serve` uses, on a tiny setting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from rigserve.bench._grpc_load import CLIENTS, ROW_HEADERS, stream_load, unary_load
from tests.grpc.grpc_server import live_grpc
from tests.server.repo_factory import sample_files


def test_unary_and_stream_load_measure_every_request(tiny_repo: Path) -> None:
    files = sample_files(seed=7)
    frames = [{"lidar": files["lidar"], "wifi": files["wifi"]}]
    lidar = np.zeros((1, 256, 4), np.float32)
    with live_grpc(tiny_repo) as live:
        unary = unary_load(live.target, "rig.lidar", {"lidar": lidar}, concurrency=2,
                           requests=21, warmup=2)
        bad = unary_load(live.target, "nope", {"lidar": lidar}, requests=3, warmup=0)
        stream = stream_load(live.target, frames, n_frames=25, window=3, warmup=5)
        served = live.metric("rigserve_subset_requests_total", subset="lidar+wifi")
    assert len(unary.latencies_s) == 21
    assert unary.errors == 0
    assert unary.throughput > 0
    assert (len(bad.latencies_s), bad.errors) == (0, 3)
    assert len(stream.latencies_s) == 25
    assert (stream.errors, stream.dropped) == (0, 0)
    assert served == 30  # warmup frames reached the engine too
    assert len(stream.row()) == len(ROW_HEADERS)


def test_grpc_clients_register_and_answer_through_the_bench_registry(tiny_repo: Path) -> None:
    from types import SimpleNamespace

    registry = CLIENTS
    assert {"kserve_grpc", "rig_stream"} <= set(registry)
    files = sample_files(seed=9)
    with live_grpc(tiny_repo) as live:
        target = SimpleNamespace(grpc_port=live.port, files={"lidar": files["lidar"]},
                                 tensors={"lidar": np.zeros((1, 256, 4), np.float32)})

        async def drive() -> None:
            for name in ("kserve_grpc", "rig_stream"):
                client = registry[name](target)
                await client.open()
                for _ in range(3):
                    await client.call()
                await client.close()

        asyncio.run(drive())
        stream_ok = live.metric("rigserve_requests_total", protocol="stream", subset="lidar",
                                code="OK")
        unary_ok = live.metric("rigserve_requests_total", protocol="kserve_grpc",
                               subset="lidar", code="OK")
    assert (stream_ok, unary_ok) == (3.0, 3.0)
    bad = SimpleNamespace(grpc_port=None, files={}, tensors={})
    with pytest.raises(ValueError, match="gRPC port"):
        registry["rig_stream"](bad)
