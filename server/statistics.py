"""Triton's statistics extension: cumulative counts and durations per model.

perf_analyzer reads these before and after every measurement window and prints the
server-side split of a request's latency (queue, compute input, infer, output). It also
uses them to find which version of a model it measured: the entry whose *queue* count
grew. So every successful request records a queue duration (zero when it ran at once)
and the three compute durations, each counted once per request, as Triton does.

What the durations mean here: ``queue`` is the wait in the dynamic batcher, ``compute
input`` the stacking of the batch's inputs, ``compute infer`` the engine run and
``compute output`` the slicing of each request's rows out of the batch's outputs. A
request in a batch of n reports the whole batch's compute durations (Triton's
convention), so ``batch_stats`` has the per-execution figures by batch size.

Updates come from the event loop and from engine threads; one lock keeps them whole.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.ns += int(seconds * 1e9)

    def as_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass(frozen=True)
class ComputeTimes:
    """Seconds one engine execution spent per phase (see the module docstring)."""

    input_s: float = 0.0
    infer_s: float = 0.0
    output_s: float = 0.0


@dataclass
class _BatchStats:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


_PHASES = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output",
           "cache_hit", "cache_miss")


@dataclass
class ModelStats:
    durations: dict[str, Duration] = field(
        default_factory=lambda: {p: Duration() for p in _PHASES})
    inference_count: int = 0  # rows inferred
    execution_count: int = 0  # engine executions this model's requests took part in
    last_inference_ms: int = 0  # ms since the epoch
    batches: dict[int, _BatchStats] = field(default_factory=dict)

    def as_dict(self, name: str, version: str) -> dict[str, Any]:
        """One ``model_stats`` entry in the KServe/Triton JSON form."""
        return {
            "name": name, "version": version, "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count, "execution_count": self.execution_count,
            "inference_stats": {p: d.as_dict() for p, d in self.durations.items()},
            "batch_stats": [
                {"batch_size": size, "compute_input": b.compute_input.as_dict(),
                 "compute_infer": b.compute_infer.as_dict(),
                 "compute_output": b.compute_output.as_dict()}
                for size, b in sorted(self.batches.items())],
        }


class Statistics:
    """Every model's :class:`ModelStats`; thread-safe."""

    def __init__(self) -> None:
        self._models: dict[str, ModelStats] = {}
        self._lock = threading.Lock()

    def _model(self, name: str) -> ModelStats:
        stats = self._models.get(name)
        if stats is None:
            stats = self._models[name] = ModelStats()
        return stats

    def record_success(self, model: str, total_s: float, queue_s: float,
                       compute: ComputeTimes, rows: int) -> None:
        with self._lock:
            s = self._model(model)
            d = s.durations
            d["success"].add(total_s)
            d["queue"].add(queue_s)
            d["compute_input"].add(compute.input_s)
            d["compute_infer"].add(compute.infer_s)
            d["compute_output"].add(compute.output_s)
            s.inference_count += rows
            s.last_inference_ms = int(time.time() * 1e3)

    def record_failure(self, model: str, total_s: float) -> None:
        with self._lock:
            self._model(model).durations["fail"].add(total_s)

    def record_execution(self, models: Iterable[str], batch_size: int,
                         compute: ComputeTimes) -> None:
        """One engine execution of ``batch_size`` rows for requests of ``models``."""
        with self._lock:
            for name in set(models):
                s = self._model(name)
                s.execution_count += 1
                b = s.batches.get(batch_size)
                if b is None:
                    b = s.batches[batch_size] = _BatchStats()
                b.compute_input.add(compute.input_s)
                b.compute_infer.add(compute.infer_s)
                b.compute_output.add(compute.output_s)

    def report(self, names: Iterable[str], version: str) -> dict[str, Any]:
        """``{"model_stats": [...]}`` for ``names`` (zeros for a model never asked)."""
        with self._lock:
            return {"model_stats": [self._models.get(n, ModelStats()).as_dict(n, version)
                                    for n in names]}
