"""gRPC load generators for `rigserve bench serve` (KServe unary and the rig stream).

Two interfaces over the same requests:

* Async clients in the benchmark's client registry (`_clients.CLIENTS`: ``open()``,
  ``call()``, ``close()``; one request per ``call`` over a connection kept open): ``kserve_grpc``
  (``ModelInfer`` to ``rig`` with raw input bytes) and ``rig_stream`` (one frame of
  MM-Fi file bytes per call on an open ``RigStream.Stream``, awaiting its answer), and
  ``ServerLive`` in `_clients.TRANSPORT` (gRPC's fixed cost). The factories read
  ``target.grpc_port``, ``target.tensors`` and ``target.files``.
* Blocking helpers for a quick look without the benchmark:
  ``unary_load(target, model, inputs, concurrency=1, requests=200, warmup=20)`` and
  ``stream_load(target, frames, n_frames=300, window=4, warmup=20)`` -> :class:`LoadResult`
  (p50/p95/p99 ms, throughput, errors, frames the server reported dropped).

The generated stubs are used directly (not tritonclient) so the client adds as little
as possible to the latency being measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from rigserve.bench._clients import CLIENTS, TRANSPORT, Target
from rigserve.bench._report import percentiles_ms
from rigserve.proto import grpc_service_pb2 as kserve_pb
from rigserve.proto import grpc_service_pb2_grpc as kserve_grpc
from rigserve.proto import rig_stream_pb2 as rig_pb
from rigserve.proto import rig_stream_pb2_grpc as rig_grpc
from rigserve.server.tensors import kserve_dtype

_OPTIONS = [("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20)]

ROW_HEADERS = ("p50 ms", "p95 ms", "p99 ms", "per s", "errors", "dropped")


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    errors: int = 0
    dropped: int = 0
    client_cpu_s: float = float("nan")  # this process's CPU over the timed part

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.duration_s if self.duration_s > 0 else float("nan")

    def row(self) -> list[object]:
        return [*percentiles_ms(self.latencies_s), self.throughput, self.errors, self.dropped]


def infer_request(model: str, inputs: Mapping[str, np.ndarray]) -> kserve_pb.ModelInferRequest:
    """A ModelInferRequest carrying ``inputs`` (batched, model-ready) as raw bytes."""
    request = kserve_pb.ModelInferRequest(model_name=model)
    for name, x in inputs.items():
        request.inputs.add(name=name, datatype=kserve_dtype(x.dtype), shape=list(x.shape))
        request.raw_input_contents.append(np.ascontiguousarray(x).tobytes())
    return request


def unary_load(target: str, model: str, inputs: Mapping[str, np.ndarray], *,
               concurrency: int = 1, requests: int = 200, warmup: int = 20) -> LoadResult:
    request = infer_request(model, inputs)
    result = LoadResult()
    lock = threading.Lock()
    with grpc.insecure_channel(target, options=_OPTIONS) as channel:
        infer = kserve_grpc.GRPCInferenceServiceStub(channel).ModelInfer
        for _ in range(warmup):
            infer(request)

        def worker(n: int) -> None:
            for _ in range(n):
                t0 = time.perf_counter()
                try:
                    infer(request)
                except grpc.RpcError:
                    with lock:
                        result.errors += 1
                    continue
                with lock:
                    result.latencies_s.append(time.perf_counter() - t0)

        shares = [requests // concurrency + (i < requests % concurrency)
                  for i in range(concurrency)]
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(worker, shares))
        result.duration_s = time.perf_counter() - start
    return result


def _rig_frame(seq: int, t: float, sensors: Mapping[str, bytes]) -> rig_pb.RigFrame:
    return rig_pb.RigFrame(rig_id="bench", sequence=seq, capture_time=t,
                           sensors={m: rig_pb.SensorPayload(file=b) for m, b in sensors.items()})


def stream_load(target: str, frames: Sequence[Mapping[str, bytes]], *, n_frames: int = 300,
                window: int = 4, warmup: int = 20,
                on_warm: Callable[[], None] = lambda: None) -> LoadResult:
    """``frames`` (MM-Fi file bytes per sensor) are cycled for ``warmup + n_frames`` frames;
    ``on_warm`` is called when the timed part starts (the last warm-up answer is in)."""
    slots = threading.Semaphore(window)
    sent_at: dict[int, float] = {}
    result = LoadResult()
    total = warmup + n_frames
    t_base = time.time()

    def outgoing() -> Iterator[rig_pb.RigFrame]:
        for i in range(total):
            slots.acquire()
            sent_at[i] = time.perf_counter()
            yield _rig_frame(i, t_base + i * 1e-3, frames[i % len(frames)])

    with grpc.insecure_channel(target, options=_OPTIONS) as channel:
        answers = rig_grpc.RigStreamStub(channel).Stream(outgoing())
        start, cpu0 = time.perf_counter(), time.process_time()
        for answer in answers:
            now = time.perf_counter()
            for _ in range(1 + len(answer.dropped_sequences)):
                slots.release()
            if answer.sequence == warmup - 1:  # timing starts once warm
                on_warm()
                start, cpu0 = now, time.process_time()
            if answer.sequence < warmup:
                continue
            result.dropped += sum(s >= warmup for s in answer.dropped_sequences)
            if answer.WhichOneof("result") == "error":
                result.errors += 1
            else:
                result.latencies_s.append(now - sent_at[answer.sequence])
        result.duration_s = time.perf_counter() - start
        result.client_cpu_s = time.process_time() - cpu0
    return result


def stream_floor(engine: Any, files: Mapping[str, bytes], *, spec: Any,
                 inputs: Mapping[str, str], n_frames: int, warmup: int = 10) -> LoadResult:
    """The rig stream's floor: what no server can skip, in one thread, no transport.

    Per frame: decode each sensor's MM-Fi file, validate it, preprocess it (the
    `rigserve.sensors` implementations) and run the same engine at batch 1. ``inputs``
    maps modality -> engine input name; ``spec`` is the manifest's PreprocessSpec.
    """
    from rigserve.sensors.formats import decode_frame
    from rigserve.sensors.preprocess import preprocess_frame
    from rigserve.sensors.validate import check_frame

    def one() -> None:
        feed = {inputs[m]: preprocess_frame(m, check_frame(m, decode_frame(m, data, m)),
                                            spec)[None]  # (1, ...) batch of one
                for m, data in files.items()}
        engine.run(feed)

    for _ in range(warmup):
        one()
    result = LoadResult()
    start = time.perf_counter()
    for _ in range(n_frames):
        t0 = time.perf_counter()
        one()
        result.latencies_s.append(time.perf_counter() - t0)
    result.duration_s = time.perf_counter() - start
    return result


def stream_vs_floor(repo: Path, engine: Any, files: Mapping[str, bytes], grpc_port: int, *,
                    n_frames: int, window: int,
                    on_warm: Callable[[], None] = lambda: None) -> tuple[LoadResult, LoadResult]:
    """(stream floor, one windowed rig stream) for ``files`` against the server at
    ``grpc_port``; the floor uses ``engine`` and the repository's preprocessing;
    ``on_warm`` as in :func:`stream_load`."""
    from rigserve.export.manifest import load_manifest
    from rigserve.sensors.preprocess import PreprocessSpec

    manifest = load_manifest(repo)
    floor = stream_floor(engine, files,
                         spec=PreprocessSpec.from_dict(dict(manifest.preprocessing)),
                         inputs={m: manifest.modalities[m].input for m in files},
                         n_frames=n_frames)
    got = stream_load(f"127.0.0.1:{grpc_port}", [files], n_frames=n_frames, window=window,
                      on_warm=on_warm)
    return floor, got


# ---- async clients for serve.py's registry --------------------------------------------

class GrpcUnaryClient:
    """``ModelInfer`` with a prebuilt request on one HTTP/2 connection."""

    def __init__(self, port: int, model: str, inputs: Mapping[str, np.ndarray]) -> None:
        self._address = f"127.0.0.1:{port}"
        self._request = infer_request(model, inputs)

    async def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._address, options=_OPTIONS)
        self._infer = kserve_grpc.GRPCInferenceServiceStub(self._channel).ModelInfer

    async def call(self) -> None:
        await self._infer(self._request)

    async def close(self) -> None:
        await self._channel.close()


class GrpcLiveClient:
    """``ServerLive``: a gRPC round trip with no payload and no inference."""

    def __init__(self, port: int) -> None:
        self._address = f"127.0.0.1:{port}"

    async def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._address, options=_OPTIONS)
        self._live = kserve_grpc.GRPCInferenceServiceStub(self._channel).ServerLive
        self._request = kserve_pb.ServerLiveRequest()

    async def call(self) -> None:
        await self._live(self._request)

    async def close(self) -> None:
        await self._channel.close()


class RigStreamClient:
    """One open rig stream; each call sends the next frame and awaits its answer."""

    def __init__(self, port: int, files: Mapping[str, bytes]) -> None:
        self._address = f"127.0.0.1:{port}"
        self._files = dict(files)
        self._seq = 0
        self._t0 = time.time()

    async def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._address, options=_OPTIONS)
        self._stream = rig_grpc.RigStreamStub(self._channel).Stream()

    async def call(self) -> None:
        self._seq += 1
        await self._stream.write(_rig_frame(self._seq, self._t0 + self._seq * 1e-3, self._files))
        answer = await self._stream.read()
        if answer is grpc.aio.EOF:
            raise RuntimeError("the server closed the rig stream")
        if answer.WhichOneof("result") != "prediction":
            raise RuntimeError(f"frame {answer.sequence}: {answer.error.code} "
                               f"{answer.error.message}")

    async def close(self) -> None:
        await self._stream.done_writing()
        await self._channel.close()


@CLIENTS.register("kserve_grpc")
def _kserve_client(target: Target) -> GrpcUnaryClient:
    return GrpcUnaryClient(_grpc_port(target), "rig", target.tensors)


@CLIENTS.register("rig_stream")
def _stream_client(target: Target) -> RigStreamClient:
    return RigStreamClient(_grpc_port(target), target.files)


@TRANSPORT.register("grpc ServerLive")
def _live_client(target: Target) -> GrpcLiveClient:
    return GrpcLiveClient(_grpc_port(target))


def _grpc_port(target: Target) -> int:
    if target.grpc_port is None:
        raise ValueError("the gRPC clients need the server started with a gRPC port")
    return int(target.grpc_port)
