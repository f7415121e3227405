"""Prometheus metrics with exactly the names in docs/contracts.md.

One :class:`Metrics` per server instance, each on its own ``CollectorRegistry`` (so two
servers in one test process never collide). Base units, ``_total`` on counters,
histograms for latency; every label takes a bounded set of values (protocols, subsets,
engines, status codes), never a rig id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PROTOCOLS = ("rest", "kserve_http", "kserve_grpc", "stream")
FRAME_STATES = ("present", "absent", "invalid", "stale")

# Sub-millisecond resolution matters: a small engine computes in ~0.1-1 ms.
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class EngineSeries:
    """One engine's labelled children, looked up once (``labels()`` costs a lock and a
    dict lookup per call, on every batch)."""

    compute: Any
    queue: Any
    batch_size: Any


class Metrics:
    """The server's metric families; attributes are prometheus_client metric objects."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # `*_created` gauges double every counter's series and no dashboard reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # process_resident_memory_bytes etc.: the soak benchmark and dashboards read them.
        ProcessCollector(registry=r)
        self.request_duration = Histogram(
            "rigserve_request_duration_seconds", "End-to-end request latency inside the server",
            ["protocol", "model", "subset"], buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_duration = Histogram(
            "rigserve_queue_duration_seconds", "Time a request waited in an engine's batch queue",
            ["engine"], buckets=_LATENCY_BUCKETS, registry=r)
        self.compute_duration = Histogram(
            "rigserve_compute_duration_seconds", "Engine run time per batch",
            ["engine"], buckets=_LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "rigserve_batch_size", "Rows per engine run after dynamic batching",
            ["engine"], buckets=_BATCH_BUCKETS, registry=r)
        self.requests = Counter(
            "rigserve_requests", "Requests answered, by protocol, routed subset and status code",
            ["protocol", "subset", "code"], registry=r)
        self.modality_frames = Counter(
            "rigserve_modality_frames", "Per-request modality frames by state",
            ["modality", "state"], registry=r)
        self.subset_requests = Counter(
            "rigserve_subset_requests", "Requests routed to each modality subset",
            ["subset"], registry=r)
        self.inflight = Gauge(
            "rigserve_inflight_requests", "Requests being processed now", registry=r)
        self.queue_rejections = Counter(
            "rigserve_queue_rejections", "Requests refused because an engine queue was full",
            ["engine"], registry=r)
        self.engine_info = Gauge(
            "rigserve_engine_info", "Loaded engines (value 1)",
            ["engine", "subset", "format", "precision", "provider"], registry=r)
        self.ready = Gauge("rigserve_ready", "1 when every engine is loaded and warmed",
                           registry=r)
        self.reloads = Counter(
            "rigserve_repository_reloads", "Repository reloads by result", ["result"],
            registry=r)
        self.sensor_transitions = Counter(
            "rigserve_sensor_transitions", "Stream sensors going online/offline",
            ["modality", "to"], registry=r)
        self.sensors_online = Gauge(
            "rigserve_sensors_online", "Stream sensors online now", ["modality"], registry=r)
        self.stream_frames_dropped = Counter(
            "rigserve_stream_frames_dropped", "Stream frames dropped by the server",
            ["reason"], registry=r)
        self.streams_active = Gauge("rigserve_streams_active", "Open edge streams", registry=r)

        # Labelled children by label values: the request path touches a dozen series per
        # request, and every label set is bounded (see the module docstring).
        self._children: dict[tuple[object, ...], Any] = {}
        self._engines: dict[str, EngineSeries] = {}

    def _child(self, family: Any, *values: str) -> Any:
        key = (id(family), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*values)
        return child

    def engine(self, name: str) -> EngineSeries:
        """The compute/queue/batch-size series of engine ``name``."""
        series = self._engines.get(name)
        if series is None:
            series = self._engines[name] = EngineSeries(
                self.compute_duration.labels(name), self.queue_duration.labels(name),
                self.batch_size.labels(name))
        return series

    def count_frame(self, modality: str, state: str) -> None:
        if state not in FRAME_STATES:
            raise ValueError(f"frame state {state!r} is not one of {FRAME_STATES}")
        self._child(self.modality_frames, modality, state).inc()

    def count_subset(self, subset: str) -> None:
        self._child(self.subset_requests, subset).inc()

    def observe_request(self, protocol: str, model: str, subset: str, code: str,
                        seconds: float) -> None:
        """Record one answered request (success or failure)."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r} is not one of {PROTOCOLS}")
        self._child(self.requests, protocol, subset, code).inc()
        self._child(self.request_duration, protocol, model, subset).observe(seconds)

    def set_engines(self, engines: list[dict[str, str]]) -> None:
        """Replace the engine_info series with the loaded engines (after load/reload)."""
        self.engine_info.clear()
        for e in engines:
            self.engine_info.labels(e["engine"], e["subset"], e["format"], e["precision"],
                                    e["provider"]).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
