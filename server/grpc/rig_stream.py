"""``rigserve.v1.RigStream``: one stream per edge rig, sensor liveness, drop-oldest queue.

Per stream (see proto/rig_stream.proto for the wire contract):

* a reader task takes frames off the wire, turns payloads into raw frames, judges
  sensor liveness on arrival (:class:`SensorLiveness`) and queues the frame;
* the queue is bounded; when full the oldest waiting frame is dropped, counted in
  ``rigserve_stream_frames_dropped_total{reason="queue_full"}`` and reported in the
  next answer, so every frame is either answered or reported;
* answers run through the shared :class:`InferenceService` a few at a time (so the
  batcher can batch) and leave in frame order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import numpy as np
from rigserve.proto import rig_stream_pb2 as pb
from rigserve.proto import rig_stream_pb2_grpc as pb_grpc
from rigserve.server.errors import InvalidInput, ServerError, from_sensor_error, grpc_code_of
from rigserve.server.grpc.liveness import SensorLiveness, Transition
from rigserve.server.grpc.queues import DropOldestQueue, QueueClosedError, ordered_map
from rigserve.server.metrics import Metrics
from rigserve.server.router import RawFrame
from rigserve.server.service import InferenceService, RigPrediction
from rigserve.server.settings import Settings
from rigserve.server.tensors import array_from_le_bytes
from typing_extensions import override

logger = logging.getLogger(__name__)

PROTOCOL = "stream"
_STATES = {"online": pb.SensorEvent.ONLINE, "offline": pb.SensorEvent.OFFLINE}
_TENSOR_DTYPES = frozenset({"uint8", "uint16", "int16", "int32", "float16", "float32", "float64"})


@dataclass(frozen=True)
class StreamOptions:
    staleness_s: float = 1.0
    #: Frames waiting for inference per stream before the oldest is dropped.
    queue_size: int = 8
    #: Frames of one stream in inference at once (4 beat 2 by 4-6% in frames/s and cut
    #: the server-side latency by a fifth on the bench's stream; 1 was slowest).
    max_inflight: int = 4


@dataclass
class _Pending:
    """A frame accepted off the wire, waiting for its answer."""

    sequence: int
    capture_time: float
    arrived: float
    frames: dict[str, RawFrame] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    online: list[str] = field(default_factory=list)
    error: Exception | None = None
    #: Frames dropped before this one since the previous answer.
    dropped: list[int] = field(default_factory=list)

    def absorb(self, older: _Pending) -> None:
        """Carry a dropped frame's report (its events and its own drop) into this one."""
        self.dropped = [*older.dropped, older.sequence, *self.dropped]
        self.transitions = [*older.transitions, *self.transitions]


def tensor_to_array(modality: str, tensor: pb.Tensor) -> np.ndarray:
    """A raw-tensor payload (numpy dtype name, little-endian on the wire) as an array."""
    if tensor.dtype not in _TENSOR_DTYPES:
        raise InvalidInput(f"{modality}: tensor dtype {tensor.dtype!r} is not accepted; "
                           f"accepted: {', '.join(sorted(_TENSOR_DTYPES))}")
    return array_from_le_bytes(tensor.data, np.dtype(tensor.dtype), tensor.shape,
                               what=modality, type_name=tensor.dtype)


def payloads_of(frame: pb.RigFrame) -> dict[str, RawFrame]:
    """Each sensor's payload: MM-Fi file bytes as sent, or the decoded raw tensor."""
    out: dict[str, RawFrame] = {}
    for modality, payload in frame.sensors.items():
        kind = payload.WhichOneof("payload")
        if kind == "file":
            out[modality] = payload.file
        elif kind == "tensor":
            out[modality] = tensor_to_array(modality, payload.tensor)
        else:
            raise InvalidInput(f"{modality}: empty payload; send `file` (MM-Fi file bytes) "
                               "or `tensor` (dtype, shape, data)")
    return out


class RigSession:
    """The state and tasks of one open stream."""

    def __init__(self, service: InferenceService, options: StreamOptions) -> None:
        self._service = service
        self._metrics: Metrics = service.metrics
        self._options = options
        self._liveness: SensorLiveness[RawFrame] = SensorLiveness(options.staleness_s)
        self._queue: DropOldestQueue[_Pending] = DropOldestQueue(options.queue_size)
        self._rig_id: str | None = None
        self._t0 = time.monotonic()
        self._dropped_total = 0
        self._reader_error: BaseException | None = None
        self._reader: asyncio.Task[None] | None = None
        #: Set by :meth:`stop_reading`: the server is shutting down.
        self.stopped = False

    def stop_reading(self) -> None:
        """Read no more frames; every frame already read is still answered, then the
        stream ends. Frames are read whole, so none is half-accepted."""
        self.stopped = True
        if self._reader is not None:
            self._reader.cancel()

    async def run(self, frames: AsyncIterator[pb.RigFrame]) -> AsyncIterator[pb.RigPrediction]:
        self._metrics.streams_active.inc()
        reader = self._reader = asyncio.create_task(self._read(frames))
        if self.stopped:  # the server began shutting down while this stream opened
            reader.cancel()
        try:
            async for answer in ordered_map(self._queued(), self._answer,
                                            self._options.max_inflight):
                yield answer
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            for modality in self._liveness.online:
                self._metrics.sensors_online.labels(modality).dec()
            self._metrics.streams_active.dec()

    # ---- reading --------------------------------------------------------------------

    async def _read(self, frames: AsyncIterator[pb.RigFrame]) -> None:
        try:
            async for frame in frames:
                self._enqueue(self._accept(frame))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the transport failed: end the stream with it
            self._reader_error = exc
        finally:
            self._queue.close()

    def _accept(self, frame: pb.RigFrame) -> _Pending:
        arrived = time.perf_counter()
        t = frame.capture_time or (time.monotonic() - self._t0)
        pending = _Pending(frame.sequence, frame.capture_time, arrived)
        try:
            self._check_rig(frame)
            payloads = payloads_of(frame)
            # Refused before liveness holds any of it: a held payload is routed again
            # with every later frame that lacks that sensor.
            self._service.check_frames(payloads)
            obs = self._liveness.observe(t, payloads)
        except ServerError as exc:
            pending.error = exc
            return pending
        pending.frames, pending.stale, pending.transitions = obs.frames, obs.stale, obs.transitions
        pending.online = self._liveness.online
        for tr in obs.transitions:
            self._metrics.sensor_transitions.labels(tr.modality, tr.to).inc()
            self._metrics.sensors_online.labels(tr.modality).inc(1 if tr.to == "online" else -1)
            logger.info("rig %s: %s %s (%s)", self._rig_id, tr.modality, tr.to, tr.reason)
        return pending

    def _check_rig(self, frame: pb.RigFrame) -> None:
        if self._rig_id is None:
            self._rig_id = frame.rig_id
        elif frame.rig_id != self._rig_id:
            raise InvalidInput(f"frame {frame.sequence}: rig_id {frame.rig_id!r} on a stream "
                               f"opened by rig {self._rig_id!r}; open one stream per rig")

    def _enqueue(self, pending: _Pending) -> None:
        dropped = self._queue.put(pending)
        if dropped is None:
            return
        self._dropped_total += 1
        self._metrics.stream_frames_dropped.labels("queue_full").inc()
        oldest = self._queue.oldest()
        assert oldest is not None  # the frame just queued is there at least
        oldest.absorb(dropped)

    async def _queued(self) -> AsyncIterator[_Pending]:
        while True:
            try:
                yield await self._queue.get()
            except QueueClosedError:
                break
        if self._reader_error is not None:
            raise self._reader_error

    # ---- answering ------------------------------------------------------------------

    async def _answer(self, pending: _Pending) -> pb.RigPrediction:
        answer = pb.RigPrediction(
            sequence=pending.sequence, capture_time=pending.capture_time,
            dropped_sequences=pending.dropped, dropped_total=self._dropped_total,
            online=pending.online,
            events=[pb.SensorEvent(modality=t.modality, state=_STATES[t.to],
                                   last_seen=t.last_seen, reason=t.reason)
                    for t in pending.transitions])
        try:
            if pending.error is not None:
                self._service.record_rejected(PROTOCOL, "rig", pending.error)
                raise pending.error
            prediction = await self._service.infer_frames(
                pending.frames, protocol=PROTOCOL, rig_id=self._rig_id, stale=pending.stale)
        except Exception as exc:
            error = _client_error(exc)
            if error is None:
                raise
            answer.error.CopyFrom(pb.Error(code=grpc_code_of(error), message=str(error)))
        else:
            answer.prediction.CopyFrom(_prediction_message(prediction))
        answer.server_latency_s = time.perf_counter() - pending.arrived
        return answer


def _client_error(exc: Exception) -> ServerError | None:
    """The error to report in-band, or None for a bug (which ends the stream INTERNAL)."""
    if isinstance(exc, ServerError):
        return exc
    if grpc_code_of(exc) == "INVALID_ARGUMENT":  # a sensors error: the client's frame
        return from_sensor_error(exc)
    return None


def _prediction_message(p: RigPrediction) -> pb.Prediction:
    top = int(np.argmax(p.action_probs))
    return pb.Prediction(
        joints=np.asarray(p.joints, np.float32).reshape(-1).tolist(),  # (17, 3) -> (51,)
        action_logits=np.asarray(p.action_logits, np.float32).tolist(),
        action=p.action, action_probability=float(p.action_probs[top]),
        subset=p.subset, used=list(p.used), dropped=dict(p.dropped), engine=p.engine)


#: The status a stream ends with when the server shuts down (gRPC's retryable code).
DRAINED = (grpc.StatusCode.UNAVAILABLE,
           "the server is shutting down: every frame it read has been answered; reconnect "
           "(to another instance) to go on")


class RigStreamServicer(pb_grpc.RigStreamServicer):
    def __init__(self, service: InferenceService, options: StreamOptions) -> None:
        self._service = service
        self._options = options
        self._sessions: set[RigSession] = set()
        self._draining = False

    @override
    async def Stream(self, request_iterator: AsyncIterator[pb.RigFrame],
                     context: grpc.aio.ServicerContext) -> AsyncIterator[pb.RigPrediction]:
        session = RigSession(self._service, self._options)
        session.stopped = self._draining
        self._sessions.add(session)
        try:
            async for answer in session.run(request_iterator):
                yield answer
        finally:
            self._sessions.discard(session)
        if session.stopped:
            await context.abort(*DRAINED)

    def drain(self) -> int:
        """Shutting down: every open stream stops reading, answers what it read and ends
        UNAVAILABLE, so edge clients reconnect instead of waiting out the grace period
        with frames that would never be answered. Returns how many streams it stopped."""
        self._draining = True
        for session in self._sessions:
            session.stop_reading()
        return len(self._sessions)


def options_from(settings: Settings) -> StreamOptions:
    """Stream options from the server settings (tests pass their own to create_grpc_server)."""
    return StreamOptions(staleness_s=settings.staleness_s, queue_size=settings.stream_queue_size,
                         max_inflight=settings.stream_max_inflight)
