"""A bare grpcio KServe endpoint: what any Python gRPC server pays per request here.

`rigserve bench serve` starts it in its own process beside the real server, on the same
engine, to separate grpcio's share of gRPC unary latency from rigserve's. It is a
``grpc.aio`` server built like rigserve's (same message limits, same GIL switch
interval, same engine session options) whose ``ModelInfer`` decodes the raw inputs, runs
the engine at once on the event loop and encodes the outputs: no routing, validation,
batching, metrics, statistics per stage, interceptors or API keys. If this server
cannot meet a latency target at concurrency 1, no Python gRPC front end can on this
machine. Enough of the protocol for perf_analyzer as well: ServerLive, ServerMetadata,
ModelMetadata, ModelConfig and ModelStatistics (counts only).

Run by hand: ``python -m rigserve.bench._bare_grpc --repo REPO --port PORT``; it prints
``ready`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from typing_extensions import override

from rigserve.proto import grpc_service_pb2 as pb
from rigserve.proto import grpc_service_pb2_grpc as pb_grpc
from rigserve.proto import model_config_pb2 as mc

MAX_BATCH = 8


def _config_type(datatype: str) -> int:
    """ModelConfig's DataType for a KServe datatype, from the server's own tables."""
    from rigserve.server.tensors import KSERVE_TO_NUMPY, triton_type

    return int(mc.DataType.Value(triton_type(KSERVE_TO_NUMPY[datatype])))


@dataclass
class _Io:
    name: str
    datatype: str
    dims: list[int]  # without the batch axis


class BareServicer(pb_grpc.GRPCInferenceServiceServicer):
    """ModelInfer straight into the engine; any model name answers."""

    def __init__(self, engine: Any, inputs: list[_Io], outputs: list[_Io]) -> None:
        from rigserve.server.grpc.tensors import decode_inputs, encode_outputs

        self._engine = engine
        self._decode, self._encode = decode_inputs, encode_outputs
        self._inputs, self._outputs = inputs, outputs
        self._count = 0

    @override
    async def ServerLive(self, request: pb.ServerLiveRequest,
                         context: grpc.aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    @override
    async def ServerMetadata(self, request: pb.ServerMetadataRequest,
                             context: grpc.aio.ServicerContext) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="rigserve-bare-grpc", version="0")

    @override
    async def ModelMetadata(self, request: pb.ModelMetadataRequest,
                            context: grpc.aio.ServicerContext) -> pb.ModelMetadataResponse:
        def tensors(ios: list[_Io]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
            return [pb.ModelMetadataResponse.TensorMetadata(
                name=t.name, datatype=t.datatype, shape=[-1, *t.dims]) for t in ios]
        return pb.ModelMetadataResponse(name=request.name, versions=["1"],
                                        platform="onnxruntime_onnx",
                                        inputs=tensors(self._inputs),
                                        outputs=tensors(self._outputs))

    @override
    async def ModelConfig(self, request: pb.ModelConfigRequest,
                          context: grpc.aio.ServicerContext) -> pb.ModelConfigResponse:
        config = mc.ModelConfig(
            name=request.name, platform="onnxruntime_onnx", max_batch_size=MAX_BATCH,
            input=[mc.ModelInput(name=t.name, data_type=_config_type(t.datatype), dims=t.dims)
                   for t in self._inputs],
            output=[mc.ModelOutput(name=t.name, data_type=_config_type(t.datatype),
                                   dims=t.dims) for t in self._outputs])
        return pb.ModelConfigResponse(config=config)

    @override
    async def ModelStatistics(self, request: pb.ModelStatisticsRequest,
                              context: grpc.aio.ServicerContext) -> pb.ModelStatisticsResponse:
        # perf_analyzer checks that the counts grow; it needs no timings.
        n = self._count
        stats = pb.InferStatistics()
        for part in (stats.success, stats.queue, stats.compute_input, stats.compute_infer,
                     stats.compute_output):
            part.count = n
        return pb.ModelStatisticsResponse(model_stats=[pb.ModelStatistics(
            name=request.name or "rig", version="1", inference_count=n, execution_count=n,
            inference_stats=stats)])

    @override
    async def ModelInfer(self, request: pb.ModelInferRequest,
                         context: grpc.aio.ServicerContext) -> pb.ModelInferResponse:
        outputs = self._engine.run(self._decode(request))
        self._count += 1
        response = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
        self._encode(outputs, response, [o.name for o in request.outputs])
        return response


def _io(tensors: Mapping[str, np.ndarray]) -> list[_Io]:
    from rigserve.server.grpc.tensors import datatype_of

    return [_Io(name, datatype_of(a), list(a.shape[1:])) for name, a in tensors.items()]


async def _serve(repo: Path, subset: str | None, port: int, threads: int) -> None:
    from rigserve.bench.serve import build_target, floor_engine
    from rigserve.server.settings import Settings

    settings = Settings(repository=repo)
    sys.setswitchinterval(settings.gil_switch_interval_us / 1e6)
    target = build_target(repo, subset, 0, None)
    engine = floor_engine(repo, target.subset, threads)
    outputs = engine.run(target.tensors)
    limit = int(settings.grpc_max_message_bytes)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit),
                                      ("grpc.max_send_message_length", limit),
                                      ("grpc.so_reuseport", 0)])
    # The generated add_* helper carries no annotations (grpcio-tools writes none).
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
        BareServicer(engine, _io(target.tensors), _io(outputs)), server)
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise OSError(f"bare gRPC server could not bind port {port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


@contextlib.contextmanager
def bare_server(repo: Path, subset: str | None,
                threads: int) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The bare server as a child process on a free port: (process, port)."""
    from rigserve.serve_process import pick_port

    port = pick_port()
    cmd = [sys.executable, "-m", "rigserve.bench._bare_grpc", "--repo", str(repo),
           "--port", str(port), "--threads", str(threads),
           *(["--subset", subset] if subset else [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ready", or "" when it died starting
        if line.strip() != b"ready":
            proc.wait(timeout=10)
            raise RuntimeError(f"bare gRPC server did not start (exit {proc.returncode})")
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def served_count(port: int) -> int:
    """Requests the bare server on ``port`` has answered (its ModelStatistics)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stats = pb_grpc.GRPCInferenceServiceStub(channel).ModelStatistics(
            pb.ModelStatisticsRequest(name="rig"))
    return int(stats.model_stats[0].inference_count)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m rigserve.bench._bare_grpc",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, required=True, help="model repository")
    p.add_argument("--subset", default=None, help="sensor subset (default: all)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.repo, args.subset, args.port, args.threads))


if __name__ == "__main__":
    main()
