"""Shutting down with streams open (rig streams and KServe ModelStreamInfer): each stream
stops reading at once, answers every frame or request it read, in order, and ends
UNAVAILABLE (retryable), so the stop does not wait out its grace period and nothing the
server took is left without an answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from rigserve.proto import grpc_service_pb2 as kserve_pb
from rigserve.proto import grpc_service_pb2_grpc as kserve_grpc
from rigserve.proto import rig_stream_pb2 as pb
from rigserve.proto import rig_stream_pb2_grpc as pb_grpc
from rigserve.server.grpc import StreamOptions, stop_grpc_server

from tests.grpc.grpc_server import LiveGrpc, live_grpc
from tests.grpc.rig_client import rig_frame
from tests.server.live_server import wait_until
from tests.server.repo_factory import build_tiny_repo, sample_raw_frames

RAW = sample_raw_frames(seed=4)
GRACE_S = 10.0


@dataclass
class Stopped:
    answers: list[Any]
    error: grpc.RpcError
    took_s: float  # how long the server's stop took


def stop_mid_stream(live: LiveGrpc, open_stream: Callable[[grpc.Channel, Iterable[Any]], Any],
                    message: Callable[[int], Any]) -> Stopped:
    """Send ``message(i)`` flat out (faster than the engine answers) down the stream
    ``open_stream`` opens; once ten answers are in, stop the server with a 10 s grace."""
    with grpc.insecure_channel(live.target) as channel:
        stop_sending = threading.Event()

        def messages() -> Iterator[Any]:
            i = 0
            while not stop_sending.is_set():
                yield message(i)
                i += 1

        answers: list[Any] = []
        ended: list[grpc.RpcError] = []
        stream = open_stream(channel, messages())

        def read() -> None:
            try:
                answers.extend(stream)
            except grpc.RpcError as exc:
                ended.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        wait_until(lambda: len(answers) >= 10, "ten answers on the stream", timeout=20)
        started = time.perf_counter()
        live.call(stop_grpc_server(live.server, GRACE_S))
        took = time.perf_counter() - started
        reader.join(10)
        stop_sending.set()
    (error,) = ended
    return Stopped(answers, error, took)


def test_shutdown_answers_every_frame_a_stream_sent_then_ends_it_unavailable(
        tmp_path: Path) -> None:
    # A wide model and a small queue: frames are waiting and in flight when the stop comes.
    repo = build_tiny_repo(tmp_path, modalities=("lidar",), hidden=4096)
    with live_grpc(repo, stream_options=StreamOptions(queue_size=4, max_inflight=2),
                   inline_max_ms=0) as live:
        out = stop_mid_stream(
            live, lambda channel, frames: pb_grpc.RigStreamStub(channel).Stream(frames),
            lambda i: rig_frame(i, 1.0 + i * 1e-3, {"lidar": RAW["lidar"]}))

        assert out.took_s < GRACE_S / 2  # the stream ended itself; nothing waited out the grace
        assert out.error.code() == grpc.StatusCode.UNAVAILABLE
        assert "every frame it read has been answered; reconnect" in (out.error.details() or "")
        answers: list[pb.RigPrediction] = out.answers
        sequences = [a.sequence for a in answers]
        dropped = {s for a in answers for s in a.dropped_sequences}
        # In order, and every frame up to the last answered is answered or reported dropped.
        assert sequences == sorted(sequences)
        assert set(range(sequences[-1] + 1)) == set(sequences) | dropped
        assert all(a.HasField("prediction") for a in answers)
        # Every frame the server took was answered (dropped ones are reported, not taken).
        taken = live.metric("rigserve_requests_total", protocol="stream", subset="lidar",
                            code="OK")
        assert taken == len(answers)
        assert live.metric("rigserve_streams_active") == 0


def _infer_request(i: int) -> kserve_pb.ModelInferRequest:
    x = np.random.default_rng(i).random((1, 256, 4)).astype(np.float32)
    request = kserve_pb.ModelInferRequest(model_name="rig", id=str(i),
                                          raw_input_contents=[x.tobytes()])
    request.inputs.add(name="lidar", datatype="FP32", shape=list(x.shape))
    return request


def test_shutdown_answers_every_request_a_model_stream_infer_stream_sent(
        tmp_path: Path) -> None:
    repo = build_tiny_repo(tmp_path, modalities=("lidar",), hidden=4096)
    with live_grpc(repo, inline_max_ms=0, infer_stream_max_inflight=4) as live:
        out = stop_mid_stream(
            live, lambda channel, requests: kserve_grpc.GRPCInferenceServiceStub(
                channel).ModelStreamInfer(requests),
            _infer_request)

        assert out.took_s < GRACE_S / 2
        assert out.error.code() == grpc.StatusCode.UNAVAILABLE
        assert ("every request it read on this stream has been answered"
                in (out.error.details() or ""))
        # Every request the server read was answered, in order and without error.
        answers: list[kserve_pb.ModelStreamInferResponse] = out.answers
        assert [a.infer_response.id for a in answers] == [str(i) for i in range(len(answers))]
        assert [a.error_message for a in answers] == [""] * len(answers)
        taken = live.metric("rigserve_requests_total", protocol="kserve_grpc", subset="lidar",
                            code="OK")
        assert taken == len(answers)
        assert live.metric("rigserve_inflight_requests") == 0
