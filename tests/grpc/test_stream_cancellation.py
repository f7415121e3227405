"""Streams the client cancels while frames are queued and in flight leave nothing behind:
the stream and sensor gauges are back to zero, no task is left on the server's loop,
nothing was counted as a server fault, and the next stream is served as usual."""

from __future__ import annotations

import asyncio
import queue
from collections import Counter
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from rigserve.proto import grpc_service_pb2 as kserve_pb
from rigserve.proto import grpc_service_pb2_grpc as kserve_grpc
from rigserve.proto import rig_stream_pb2 as pb
from rigserve.proto import rig_stream_pb2_grpc as pb_grpc
from rigserve.server.grpc import StreamOptions

from tests.grpc.grpc_server import LiveGrpc, live_grpc
from tests.grpc.rig_client import LockStep, rig_frame
from tests.server.live_server import wait_until
from tests.server.repo_factory import build_tiny_repo, sample_raw_frames

ONLINE = pb.SensorEvent.ONLINE


@pytest.fixture(scope="module")
def slow_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGrpc]:
    # A wide LiDAR-only model behind a 4-frame stream queue: a stream sent faster than it
    # is answered has frames waiting and in flight when it is cancelled.
    repo = build_tiny_repo(tmp_path_factory.mktemp("slow"), modalities=("lidar",), hidden=4096)
    with live_grpc(repo, stream_options=StreamOptions(queue_size=4, max_inflight=2),
                   inline_max_ms=0) as live:
        yield live


def _tasks(live: LiveGrpc) -> Counter[str]:
    """The server loop's tasks (grpc's own included) by coroutine name."""
    async def names() -> Counter[str]:
        me = asyncio.current_task()
        return Counter(getattr(t.get_coro(), "__qualname__", "?")
                       for t in asyncio.all_tasks() if t is not me)
    return live.call(names())


def _codes(live: LiveGrpc, protocol: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for family in live.service.metrics.registry.collect():
        for s in family.samples:
            if s.name == "rigserve_requests_total" and s.labels["protocol"] == protocol:
                counts[s.labels["code"]] += int(s.value)
    return counts


def _settled(live: LiveGrpc, tasks: Counter[str]) -> bool:
    return (live.metric("rigserve_streams_active") == 0
            and live.metric("rigserve_sensors_online", modality="lidar") == 0
            and live.metric("rigserve_inflight_requests") == 0
            and _tasks(live) == tasks)


def _infer_request(seed: int, rows: int = 1) -> kserve_pb.ModelInferRequest:
    x = np.random.default_rng(seed).random((rows, 256, 4)).astype(np.float32)  # (B, 256, 4)
    request = kserve_pb.ModelInferRequest(model_name="rig", id=str(seed),
                                          raw_input_contents=[x.tobytes()])
    request.inputs.add(name="lidar", datatype="FP32", shape=list(x.shape))
    return request


def _backlog(live: LiveGrpc, channel: grpc.Channel, n: int = 32) -> list[grpc.Future]:
    """``n`` full-batch requests for the one engine thread: whatever is sent after them
    waits in the batcher's queue, in flight, for a good while."""
    stub = kserve_grpc.GRPCInferenceServiceStub(channel)
    calls = [stub.ModelInfer.future(_infer_request(i, rows=32), timeout=60) for i in range(n)]
    wait_until(lambda: live.metric("rigserve_inflight_requests") >= n // 2,
               "the backlog to reach the engine")
    return calls


def test_a_rig_stream_cancelled_with_frames_waiting_leaves_nothing_behind(
        slow_live: LiveGrpc) -> None:
    live, lidar = slow_live, sample_raw_frames()["lidar"]
    tasks, before = _tasks(live), _codes(live, "stream")
    dropped = live.metric("rigserve_stream_frames_dropped_total", reason="queue_full")
    outbox: queue.Queue[pb.RigFrame | None] = queue.Queue()
    for i in range(40):  # all at once, far faster than they are answered
        outbox.put(rig_frame(i, 0.01 * i, {"lidar": lidar}))
    with grpc.insecure_channel(live.target) as channel:
        try:
            backlog = _backlog(live, channel)
            call = pb_grpc.RigStreamStub(channel).Stream(iter(outbox.get, None))
            # Two frames in inference (stream_max_inflight), four queued, the rest dropped.
            wait_until(lambda: _tasks(live)["RigSession._answer"] == 2
                       and live.metric("rigserve_stream_frames_dropped_total",
                                       reason="queue_full") > dropped,
                       "frames in flight and the stream's queue overflowing")
            assert live.metric("rigserve_streams_active") == 1
            assert live.metric("rigserve_sensors_online", modality="lidar") == 1
            call.cancel()  # the client never half-closed: the reader is still reading
            with pytest.raises(grpc.RpcError) as info:
                list(call)
            assert info.value.code() == grpc.StatusCode.CANCELLED
        finally:
            outbox.put(None)  # ends the request iterator grpc reads on its own thread
        assert {c.code() for c in backlog} == {grpc.StatusCode.OK}
        wait_until(lambda: _settled(live, tasks), "the cancelled stream to be cleaned up")
        # Frames cut short by the cancel are the client's doing, not server faults.
        counted = _codes(live, "stream") - before
        assert counted["CANCELLED"], counted
        assert set(counted) <= {"OK", "CANCELLED"}, counted

        fresh = LockStep(channel)
        answer = fresh.send(rig_frame(0, 1.0, {"lidar": lidar}))
        assert answer.prediction.subset == "lidar"
        assert [(e.modality, e.state) for e in answer.events] == [("lidar", ONLINE)]
        assert live.metric("rigserve_sensors_online", modality="lidar") == 1
        assert fresh.close() == []
    wait_until(lambda: _settled(live, tasks), "the second stream to end")


def test_a_model_stream_infer_cancelled_mid_stream_leaves_nothing_behind(
        slow_live: LiveGrpc) -> None:
    live = slow_live
    tasks, before = _tasks(live), _codes(live, "kserve_grpc")
    inflight = live.service.settings.infer_stream_max_inflight
    outbox: queue.Queue[kserve_pb.ModelInferRequest | None] = queue.Queue()
    for i in range(40):
        outbox.put(_infer_request(i))
    with grpc.insecure_channel(live.target) as channel:
        stub = kserve_grpc.GRPCInferenceServiceStub(channel)
        try:
            backlog = _backlog(live, channel)
            call = stub.ModelStreamInfer(iter(outbox.get, None))
            wait_until(lambda: _tasks(live)["InferenceServicer._stream_one"] == inflight,
                       "the stream's requests in flight")
            call.cancel()
            with pytest.raises(grpc.RpcError) as info:
                list(call)
            assert info.value.code() == grpc.StatusCode.CANCELLED
        finally:
            outbox.put(None)
        assert {c.code() for c in backlog} == {grpc.StatusCode.OK}
        wait_until(lambda: _settled(live, tasks), "the cancelled stream to be cleaned up")
        counted = _codes(live, "kserve_grpc") - before
        assert counted["CANCELLED"], counted
        assert set(counted) <= {"OK", "CANCELLED"}, counted
        answer = stub.ModelInfer(_infer_request(99), timeout=10)
        assert answer.parameters["subset"].string_param == "lidar"
