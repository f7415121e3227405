"""Edge client: replay an MM-Fi folder or a simulated rig over the rig stream.

The pieces ``rigserve edge`` is made of, usable on their own:

* :func:`parse_failures` / :class:`FailureScript`: scripted sensor failures,
  ``"lidar@5s-15s,wifi:p=0.2"`` (LiDAR silent from 5 s to 15 s, WiFi missing 20 % of
  frames), judged on the stream's capture clock;
* frame sources yielding :class:`SourceFrame` (MM-Fi file bytes per sensor, plus the
  ground truth when known): :func:`mmfi_frames` and :func:`simulated_frames`;
* :func:`stream_frames`: paces frames at ``fps`` over ``rigserve.v1.RigStream``, hands
  each answer to a callback as an :class:`EdgeAnswer` and returns an
  :class:`EdgeSummary`.

No torch, no server imports: an edge box needs grpcio, numpy and `rigserve.sensors`.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from rigserve.proto import rig_stream_pb2 as pb
from rigserve.proto import rig_stream_pb2_grpc as pb_grpc
from rigserve.sensors.specs import SENSOR_MODALITIES

if TYPE_CHECKING:
    from rigserve.sensors.index import MMFiIndex

logger = logging.getLogger(__name__)

FAILURE_GRAMMAR = "MODALITY[@START-[END]][:p=P], e.g. 'lidar@5s-15s,wifi:p=0.2'"
_RULE = re.compile(r"^(?P<mod>[a-z_-]+)(?:@(?P<start>[^-:]+)-(?P<end>[^:]*))?"
                   r"(?::p=(?P<p>[0-9.eE+-]+))?$")
_TIME = re.compile(r"^(?P<value>[0-9]*\.?[0-9]+)(?P<unit>ms|s)?$")


# ---- scripted failures ------------------------------------------------------------------

@dataclass(frozen=True)
class FailureRule:
    """``modality`` sends nothing in [start_s, end_s), on each frame with probability ``p``."""

    modality: str
    start_s: float = 0.0
    end_s: float = math.inf
    p: float = 1.0

    def silent(self, t: float, rng: np.random.Generator) -> bool:
        if not self.start_s <= t < self.end_s:
            return False
        return self.p >= 1.0 or bool(rng.random() < self.p)


def _seconds(text: str, rule: str) -> float:
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"failure rule {rule!r}: time {text!r} is not a number of "
                         f"seconds ('5s', '2.5', '1500ms'); expected {FAILURE_GRAMMAR}")
    value = float(m.group("value"))
    return value / 1e3 if m.group("unit") == "ms" else value


def _parse_rule(rule: str) -> FailureRule:
    m = _RULE.match(rule)
    if not m or (m.group("start") is None and m.group("p") is None):
        raise ValueError(f"failure rule {rule!r} is not {FAILURE_GRAMMAR}")
    modality = m.group("mod")
    if modality not in SENSOR_MODALITIES:
        raise ValueError(f"failure rule {rule!r}: unknown modality {modality!r}; "
                         f"accepted: {', '.join(SENSOR_MODALITIES)}")
    start = _seconds(m.group("start"), rule) if m.group("start") is not None else 0.0
    end = _seconds(m.group("end"), rule) if m.group("end") else math.inf
    if end <= start:
        raise ValueError(f"failure rule {rule!r}: window ends at {end} s, not after its "
                         f"start at {start} s")
    p = float(m.group("p")) if m.group("p") is not None else 1.0
    if not 0.0 < p <= 1.0:
        raise ValueError(f"failure rule {rule!r}: p={p} must be in (0, 1]")
    return FailureRule(modality, start, end, p)


def parse_failures(text: str) -> tuple[FailureRule, ...]:
    """Parse a comma-separated failure script; an empty script means no failures."""
    return tuple(_parse_rule(part.strip()) for part in text.split(",") if part.strip())


class FailureScript:
    """Which sensors are silent at a capture time; random drops are seeded."""

    def __init__(self, rules: Iterable[FailureRule] = (), seed: int = 0) -> None:
        self.rules = tuple(rules)
        self._rng = np.random.default_rng(seed)

    def silenced(self, t: float) -> set[str]:
        return {r.modality for r in self.rules if r.silent(t, self._rng)}


# ---- frame sources ----------------------------------------------------------------------

@dataclass(frozen=True)
class SourceFrame:
    #: modality -> the frame's MM-Fi file bytes (png / bin / mat).
    sensors: dict[str, bytes]
    #: (17, 3) metres when known.
    ground_truth: np.ndarray | None = None
    key: str = ""


def mmfi_frames(root: Path, modalities: Sequence[str] = SENSOR_MODALITIES,
                limit: int | None = None) -> Iterator[SourceFrame]:
    """Every frame of every sequence under an MM-Fi-layout ``root``, file bytes as on disk.

    The folder is scanned now, not at the first ``next``: the stream pulls frames on
    gRPC's thread, where a missing or foreign folder would surface only as a broken
    stream. Raises FileNotFoundError, or FormatError (a ValueError) on a foreign folder.
    """
    from rigserve.sensors.index import MMFiIndex

    return _mmfi_frames(root, MMFiIndex.scan(root), modalities, limit)


def _mmfi_frames(root: Path, index: MMFiIndex, modalities: Sequence[str],
                 limit: int | None) -> Iterator[SourceFrame]:
    from rigserve.sensors.formats import frame_path, ground_truth_path, read_ground_truth

    count = 0
    for seq in index:
        gt = read_ground_truth(ground_truth_path(root, seq.env, seq.subject, seq.action)) \
            if seq.gt_frames else None
        frames = sorted({i for m in modalities for i in seq.frames.get(m, ())})
        for i in frames:
            if limit is not None and count >= limit:
                return
            sensors = {m: frame_path(root, seq.env, seq.subject, seq.action, m, i).read_bytes()
                       for m in modalities if i in seq.frames.get(m, ())}
            truth = gt[i - 1] if gt is not None and i <= len(gt) else None
            yield SourceFrame(sensors, truth, f"{seq.key}#{i}")
            count += 1


def simulated_frames(frames: int, *, seed: int = 0, env: str = "E01", subject: str = "S01",
                     action: str = "A01",
                     modalities: Sequence[str] = SENSOR_MODALITIES) -> Iterator[SourceFrame]:
    """Live frames from the synthetic rig, encoded as the MM-Fi files a rig would write.

    The sequence and renderers are built now (as for :func:`mmfi_frames`), so an unknown
    action or a frame count below 1 is a ValueError here, not a broken stream later.
    """
    from rigserve.sensors.simulator import RenderContext, build_renderer, generate_sequence

    sequence = generate_sequence(seed, env, subject, action, frames)
    ctx = RenderContext(sequence)
    # Importing the simulator package registered every renderer.
    renderers = {m: build_renderer(m, ctx) for m in modalities}
    return _simulated_frames(sequence, renderers, frames, seed, f"sim/{env}/{subject}/{action}")


def _simulated_frames(sequence: Any, renderers: dict[str, Any], frames: int, seed: int,
                      prefix: str) -> Iterator[SourceFrame]:
    from rigserve.sensors.formats import encode_frame

    rng = np.random.default_rng(seed)
    for i in range(frames):
        sensors = {}
        for m, render in renderers.items():
            out = render(i, rng)
            sensors[m] = encode_frame(m, out.array, **out.extra)
        key = f"{prefix}#{i + 1}"
        yield SourceFrame(sensors, np.asarray(sequence.joints[i]), key)


# ---- the stream client ------------------------------------------------------------------

@dataclass(frozen=True)
class EdgeAnswer:
    sequence: int
    subset: str
    latency_s: float
    sent: tuple[str, ...]
    mpjpe_mm: float | None = None
    action: str = ""
    events: tuple[tuple[str, str, str], ...] = ()  # (modality, ONLINE/OFFLINE, reason)
    dropped_frames: tuple[int, ...] = ()
    error: str | None = None


@dataclass
class EdgeSummary:
    sent: int = 0
    answered: int = 0
    errors: int = 0
    dropped_by_server: int = 0
    subsets: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    mpjpe_mm: list[float] = field(default_factory=list)
    transitions: list[tuple[int, str, str, str]] = field(default_factory=list)
    duration_s: float = 0.0
    #: Streams re-opened after the server ended one UNAVAILABLE (shutdown, restart).
    reconnects: int = 0
    #: Frames sent that were neither answered nor reported dropped: on the wire when a
    #: stream ended (the server answers every frame it read before it ends one).
    unanswered: int = 0
    #: Frames captured while no stream was open (between a stream ending and the next
    #: one opening): never sent, as a live rig cannot send the past in a burst.
    skipped_offline: int = 0

    def add(self, answer: EdgeAnswer) -> None:
        self.answered += 1
        self.dropped_by_server += len(answer.dropped_frames)
        self.latencies_s.append(answer.latency_s)
        self.transitions += [(answer.sequence, *e) for e in answer.events]
        if answer.error is not None:
            self.errors += 1
            return
        self.subsets[answer.subset] += 1
        if answer.mpjpe_mm is not None:
            self.mpjpe_mm.append(answer.mpjpe_mm)

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q) * 1e3) if self.latencies_s else math.nan

    @property
    def fps(self) -> float:
        return self.answered / self.duration_s if self.duration_s > 0 else math.nan


def _answer_view(a: pb.RigPrediction, sent: tuple[str, ...], latency_s: float,
                 truth: np.ndarray | None) -> EdgeAnswer:
    events = tuple((e.modality, pb.SensorEvent.State.Name(e.state), e.reason) for e in a.events)
    common = {"sequence": a.sequence, "latency_s": latency_s, "sent": sent, "events": events,
              "dropped_frames": tuple(a.dropped_sequences)}
    if a.WhichOneof("result") != "prediction":
        return EdgeAnswer(subset="", error=f"{a.error.code}: {a.error.message}", **common)
    joints = np.reshape(np.asarray(a.prediction.joints, np.float32), (17, 3))  # (51,) -> (17, 3)
    mpjpe = (float(np.linalg.norm(joints - truth, axis=-1).mean() * 1e3)
             if truth is not None else None)
    return EdgeAnswer(subset=a.prediction.subset, mpjpe_mm=mpjpe, action=a.prediction.action,
                      **common)


def open_channel(target: str, root_cert: Path | None = None,
                 max_message_bytes: int = 64 << 20) -> grpc.Channel:
    options = [("grpc.max_send_message_length", max_message_bytes),
               ("grpc.max_receive_message_length", max_message_bytes)]
    if root_cert is None:
        return grpc.insecure_channel(target, options=options)
    creds = grpc.ssl_channel_credentials(root_certificates=root_cert.read_bytes())
    return grpc.secure_channel(target, creds, options=options)


def stream_frames(channel: grpc.Channel, rig: str, source: Iterable[SourceFrame], *,
                  fps: float = 10.0, failures: FailureScript | None = None,
                  api_key: str | None = None,
                  on_answer: Callable[[EdgeAnswer], None] | None = None,
                  max_reconnects: int = 5) -> EdgeSummary:
    """Send ``source`` as rig ``rig`` at ``fps`` (0 = as fast as possible); collect answers.

    A stream the server ends UNAVAILABLE (it is shutting down or restarting; a Kubernetes
    Service then routes the new stream to another pod) is re-opened with the next frame,
    up to ``max_reconnects`` times in a row without an answer in between, waiting 0.5 s,
    1 s, 2 s... (at most 5 s) before each attempt. Any other error ends the run. At a
    set ``fps``, frames whose capture time fell while no stream was open are skipped
    (``EdgeSummary.skipped_offline``): the new stream starts with the live frame.
    """
    script = failures or FailureScript()
    summary = EdgeSummary()
    lock = threading.Lock()
    inflight: dict[int, tuple[float, tuple[str, ...], np.ndarray | None]] = {}
    numbered = enumerate(source)  # shared by every stream this run opens
    start_wall, start = time.time(), time.perf_counter()
    opened = start  # when the current stream was (re)opened

    def frames() -> Iterator[pb.RigFrame]:
        while True:
            with lock:
                nxt = next(numbered, None)
            if nxt is None:
                return
            i, src = nxt
            t = i / fps if fps > 0 else time.perf_counter() - start
            if fps > 0 and start + t < opened:  # captured while no stream was open
                with lock:
                    summary.skipped_offline += 1
                continue
            if fps > 0:
                time.sleep(max(0.0, start + t - time.perf_counter()))
            silent = script.silenced(t)
            sensors = {m: pb.SensorPayload(file=data) for m, data in src.sensors.items()
                       if m not in silent}
            with lock:
                inflight[i] = (time.perf_counter(), tuple(sorted(sensors)), src.ground_truth)
                summary.sent += 1
            yield pb.RigFrame(rig_id=rig, sequence=i, capture_time=start_wall + t,
                              sensors=sensors)

    metadata = (("authorization", f"Bearer {api_key}"),) if api_key else None
    stub = pb_grpc.RigStreamStub(channel)
    failed = 0  # attempts in a row without an answer
    while True:
        try:
            for answer in stub.Stream(frames(), metadata=metadata):
                failed = 0
                with lock:
                    sent_at, sent, truth = inflight.pop(answer.sequence)
                    for s in answer.dropped_sequences:
                        inflight.pop(s, None)
                view = _answer_view(answer, sent, time.perf_counter() - sent_at, truth)
                summary.add(view)
                if on_answer is not None:
                    on_answer(view)
            break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or failed >= max_reconnects:
                raise
            delay = min(5.0, 0.5 * 2 ** failed)
            failed += 1
            summary.reconnects += 1
            logger.warning("rig stream ended (%s); reconnecting in %.1f s", exc.details(), delay)
            time.sleep(delay)
            opened = time.perf_counter()
    summary.unanswered = len(inflight)
    summary.duration_s = time.perf_counter() - start
    return summary
