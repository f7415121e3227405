"""Helpers to drive the rig stream from a blocking test thread."""

from __future__ import annotations

import queue
from collections.abc import Iterator, Mapping
from typing import Any

import grpc
import numpy as np
from rigserve.proto import rig_stream_pb2 as pb
from rigserve.proto import rig_stream_pb2_grpc as pb_grpc


def rig_frame(sequence: int, t: float, sensors: Mapping[str, np.ndarray | bytes],
              rig: str = "r1") -> pb.RigFrame:
    frame = pb.RigFrame(rig_id=rig, sequence=sequence, capture_time=t)
    for m, x in sensors.items():
        if isinstance(x, bytes):
            frame.sensors[m].file = x
        else:
            data = x.astype(x.dtype.newbyteorder("<")).tobytes()  # the wire is little-endian
            frame.sensors[m].tensor.CopyFrom(
                pb.Tensor(dtype=x.dtype.name, shape=list(x.shape), data=data))
    return frame


class LockStep:
    """Send one frame, read its answer: a stream driven step by step."""

    def __init__(self, channel: grpc.Channel, metadata: Any = None) -> None:
        self._outbox: queue.Queue[pb.RigFrame | None] = queue.Queue()
        stub = pb_grpc.RigStreamStub(channel)
        self._answers: Iterator[pb.RigPrediction] = stub.Stream(
            iter(self._outbox.get, None), metadata=metadata)

    def send(self, frame: pb.RigFrame) -> pb.RigPrediction:
        self._outbox.put(frame)
        return next(self._answers)

    def close(self) -> list[pb.RigPrediction]:
        self._outbox.put(None)
        return list(self._answers)
