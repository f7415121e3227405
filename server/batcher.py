"""Dynamic batching for one engine: a bounded queue, batches up to ``max_batch`` rows.

Each engine instance has its own thread that owns the engine: it takes a batch from the
queue, stacks the inputs, runs the engine (ONNX Runtime releases the GIL), slices each
request's rows out and hands all of the batch's answers to the event loop in one
callback. The event loop only enqueues and receives, so the engine starts its next
batch the moment it finishes one, however busy the loop is parsing requests.

A batch leaves as soon as the engine is free, with whatever is queued; it waits (up to
``max_delay_s`` after its first request was queued) for more only while other requests
are in flight and could still join. So a lone client pays no batching delay, and under
load batches form while the previous one computes.

Immediate dispatch: a request that finds the engine idle, nothing queued and no other
request in flight anywhere in the server cannot be batched with anything, so it skips
the queue and the thread hand-off and runs at once on the calling thread, provided the
engine is fast (its running mean compute time is at most ``inline_max_s``), so the event
loop is never held longer than a short request's parse.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from rigserve.server.engines import Engine
from rigserve.server.errors import NotReady, Overloaded
from rigserve.server.metrics import Metrics
from rigserve.server.statistics import ComputeTimes, Statistics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    outputs: dict[str, np.ndarray]
    queue_s: float
    batch_rows: int
    times: ComputeTimes = field(default_factory=ComputeTimes)  # input/infer/output split

    @property
    def compute_s(self) -> float:
        """The engine run, seconds."""
        return self.times.infer_s


@dataclass(eq=False)  # identity: the queue removes an abandoned item by itself
class _Item:
    inputs: Mapping[str, np.ndarray]
    rows: int
    key: tuple[tuple[str, tuple[int, ...]], ...]  # items batch together only with equal keys
    model: str
    future: asyncio.Future[BatchResult]
    loop: asyncio.AbstractEventLoop
    enqueued: float = field(default_factory=time.perf_counter)


class DynamicBatcher:
    """Queue and engine threads for one engine."""

    def __init__(self, engine: Engine, *, max_batch: int, max_delay_s: float, max_queue: int,
                 metrics: Metrics, more_coming: Callable[[int], bool] = lambda _n: False,
                 instances: int = 1, inline_max_s: float = 0.0,
                 stats: Statistics | None = None) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self._metrics = metrics
        self._stats = stats or Statistics()
        self._more_coming = more_coming
        self._instances = instances
        self._queue: collections.deque[_Item] = collections.deque()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._stop = False
        self._avg_compute_s = 1e-3
        self._inline_max_s = inline_max_s
        self._running = 0  # batches computing now (engine threads or inline); under _cond

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"engine:{self.engine.name}:{i}")
                         for i in range(self._instances)]
        for t in self._threads:
            t.start()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, inputs: Mapping[str, np.ndarray], model: str = "") -> BatchResult:
        """Queue one request (leading batch axis on every input) and await its rows.

        ``model`` is the model name the request was sent to, for Triton's statistics.
        """
        if self._closed:
            raise NotReady(f"engine {self.engine.name} is shutting down")
        if self.queued >= self.max_queue:
            self._metrics.queue_rejections.labels(self.engine.name).inc()
            wait = self.queued * self._avg_compute_s / self.max_batch
            raise Overloaded(f"engine {self.engine.name}: queue full ({self.max_queue} requests "
                             "waiting); retry later", retry_after_s=wait)
        rows = next(iter(inputs.values())).shape[0]
        if self._alone():
            # One pass of the loop lets requests that already arrived (their tasks are
            # ready to run) register as in flight; only if none did is this one alone.
            await asyncio.sleep(0)
            if self._alone():
                return self._run_inline(inputs, rows, model)
        loop = asyncio.get_running_loop()
        key = tuple(sorted((k, v.shape[1:]) for k, v in inputs.items()))
        item = _Item(inputs, rows, key, model, loop.create_future(), loop)
        with self._cond:
            self._queue.append(item)
            self._cond.notify()
        try:
            return await item.future
        except asyncio.CancelledError:
            # The caller gave up (deadline, disconnect): if its request has not left the
            # queue yet, take it out, so it costs no engine run and frees its slot.
            with self._cond, contextlib.suppress(ValueError):
                self._queue.remove(item)
            raise

    def _alone(self) -> bool:
        """Nothing to batch with, now or soon: engine idle, queue empty, no one else in flight."""
        return (self._avg_compute_s <= self._inline_max_s and not self._running
                and not self._queue and not self._more_coming(1))

    def _run_inline(self, inputs: Mapping[str, np.ndarray], rows: int,
                    model: str) -> BatchResult:
        # Synchronous on purpose: no await between the check in submit and the run, so no
        # other request can slip in; the loop is held for one short engine run.
        with self._cond:
            self._running += 1
        started = time.perf_counter()
        try:
            outputs = self.engine.run(inputs)
        finally:
            with self._cond:
                self._running -= 1
        times = ComputeTimes(0.0, time.perf_counter() - started, 0.0)
        self._note(rows, [0.0], [model], times)
        return BatchResult(outputs, 0.0, rows, times)

    async def close(self) -> None:
        """Stop accepting, finish everything queued, stop the engine threads."""
        self._closed = True
        while self._queue or self._running:
            await asyncio.sleep(0.005)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            await asyncio.to_thread(t.join, 5.0)

    # ---- engine threads -------------------------------------------------------------------

    def _gather(self) -> list[_Item] | None:
        """The next batch (under ``_cond``); None when stopping."""
        while not self._queue:
            if self._stop:
                return None
            self._cond.wait()
        first = self._queue.popleft()
        batch, rows = [first], first.rows
        deadline = first.enqueued + self.max_delay_s
        while rows < self.max_batch:
            if not self._queue:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._stop or not self._more_coming(len(batch)):
                    break
                self._cond.wait(remaining)
                continue
            item = self._queue[0]
            if item.key != first.key or rows + item.rows > self.max_batch:
                break  # it leads the next batch
            batch.append(self._queue.popleft())
            rows += item.rows
        self._running += 1
        return batch

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._gather()
            if batch is None:
                return
            try:
                self._execute(batch)
            finally:
                with self._cond:
                    self._running -= 1

    def _execute(self, batch: list[_Item]) -> None:
        """Run one batch and answer every request in it, whatever happens: an exception
        becomes each request's answer and the thread lives on for the next batch."""
        started = time.perf_counter()
        try:
            feed = _concat([i.inputs for i in batch])
            t_in = time.perf_counter()
            outputs = self.engine.run(feed)
            t_run = time.perf_counter()
            parts, offset = [], 0
            for i in batch:
                # (rows_i, ...) slices of each (sum rows, ...) output, in queue order.
                parts.append({k: v[offset:offset + i.rows] for k, v in outputs.items()})
                offset += i.rows
            times = ComputeTimes(t_in - started, t_run - t_in, time.perf_counter() - t_run)
            self._note(offset, [started - i.enqueued for i in batch],
                       [i.model for i in batch], times)
        except Exception as exc:
            logger.exception("engine %s failed on a batch of %d", self.engine.name, len(batch))
            _deliver_soon(batch, exc)
            return
        _deliver_soon(batch, [BatchResult(p, started - i.enqueued, offset, times)
                              for i, p in zip(batch, parts, strict=True)])

    def _note(self, rows: int, queued: list[float], models: list[str],
              times: ComputeTimes) -> None:
        """Running mean of compute time (for Retry-After and the inline rule), metrics and
        Triton statistics for one execution."""
        self._avg_compute_s = 0.9 * self._avg_compute_s + 0.1 * times.infer_s
        m = self._metrics.engine(self.engine.name)
        m.compute.observe(times.infer_s)
        m.batch_size.observe(rows)
        for q in queued:
            m.queue.observe(q)
        self._stats.record_execution(models, rows, times)


def _deliver_soon(batch: list[_Item], results: list[BatchResult] | Exception) -> None:
    """Resolve the batch's futures on their event loop(s), one callback per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, BatchResult | Exception]]] = {}
    for n, item in enumerate(batch):
        answer = results if isinstance(results, Exception) else results[n]
        by_loop.setdefault(item.loop, []).append((item, answer))
    for loop, answers in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, answers)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            logger.warning("dropping %d answers for a closed event loop", len(answers))


def _resolve(answers: list[tuple[_Item, BatchResult | Exception]]) -> None:
    for item, answer in answers:
        if item.future.done():  # the caller gave up (cancelled, timed out)
            continue
        if isinstance(answer, Exception):
            item.future.set_exception(answer)
        else:
            item.future.set_result(answer)


def _concat(items: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(items) == 1:
        return dict(items[0])
    # (sum of rows, ...) per input; the gather step guaranteed equal trailing shapes.
    return {k: np.concatenate([it[k] for it in items], axis=0) for k in items[0]}
