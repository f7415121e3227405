"""Dynamic batching for one engine: a bounded queue, batches up to ``max_batch`` rows.

A batch leaves as soon as the engine is free, with whatever is queued; it waits (up to
``max_delay_s`` after its first request was queued) for more only while other requests
are in flight and could still join. So a lone client pays no batching delay, and under
load batches form while the previous one computes. The engine runs in a thread pool,
off the event loop (ONNX Runtime releases the GIL).

Immediate dispatch: a request that finds the engine idle, nothing queued and no other
request in flight anywhere in the server cannot be batched with anything, so it skips
the queue, the worker wake-up and the thread hand-off and runs at once on the calling
thread, provided the engine is fast (its running mean compute time is at most
``inline_max_s``), so the event loop is never held longer than a short request's parse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np
from rigserve.server.engines import Engine
from rigserve.server.errors import NotReady, Overloaded
from rigserve.server.metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    outputs: dict[str, np.ndarray]
    queue_s: float
    compute_s: float
    batch_rows: int


@dataclass
class _Item:
    inputs: Mapping[str, np.ndarray]
    rows: int
    key: tuple[tuple[str, tuple[int, ...]], ...]  # items batch together only with equal keys
    future: asyncio.Future[BatchResult]
    enqueued: float = field(default_factory=time.perf_counter)


class DynamicBatcher:
    """Queue and worker tasks for one engine."""

    def __init__(self, engine: Engine, *, max_batch: int, max_delay_s: float, max_queue: int,
                 executor: Executor, metrics: Metrics,
                 more_coming: Callable[[int], bool] = lambda _n: False,
                 instances: int = 1, inline_max_s: float = 0.0) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self._executor = executor
        self._metrics = metrics
        self._more_coming = more_coming
        self._instances = instances
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._carry: list[_Item] = []
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False
        self._avg_compute_s = 1e-3
        self._inline_max_s = inline_max_s
        self._running = 0  # batches computing now (worker-run or inline)

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"batcher:{self.engine.name}:{i}")
                         for i in range(self._instances)]

    @property
    def queued(self) -> int:
        return self._queue.qsize() + len(self._carry)

    async def submit(self, inputs: Mapping[str, np.ndarray]) -> BatchResult:
        """Queue one request (leading batch axis on every input) and await its rows."""
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
                return self._run_inline(inputs, rows)
        key = tuple(sorted((k, v.shape[1:]) for k, v in inputs.items()))
        item = _Item(inputs, rows, key, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(item)
        return await item.future

    def _alone(self) -> bool:
        """Nothing to batch with, now or soon: engine idle, queue empty, no one else in flight."""
        return (self._avg_compute_s <= self._inline_max_s and not self._running
                and not self.queued and not self._more_coming(1))

    def _run_inline(self, inputs: Mapping[str, np.ndarray], rows: int) -> BatchResult:
        # Synchronous on purpose: no await between the check in submit and the run, so no
        # other request can slip in; the loop is held for one short engine run.
        started = time.perf_counter()
        self._running += 1
        try:
            outputs = self.engine.run(inputs)
        finally:
            self._running -= 1
        compute = time.perf_counter() - started
        self._note(compute, rows, [0.0])
        return BatchResult(outputs, 0.0, compute, rows)

    async def close(self) -> None:
        """Stop accepting, finish everything queued, stop the workers."""
        self._closed = True
        while self.queued:
            await asyncio.sleep(0.005)
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _next(self) -> _Item:
        return self._carry.pop(0) if self._carry else await self._queue.get()

    async def _gather(self) -> list[_Item]:
        first = await self._next()
        batch, rows = [first], first.rows
        deadline = first.enqueued + self.max_delay_s
        while rows < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or not self._more_coming(len(batch)):
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if item.key != first.key or rows + item.rows > self.max_batch:
                self._carry.append(item)
                break
            batch.append(item)
            rows += item.rows
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [i for i in await self._gather() if not i.future.done()]
            if not batch:
                continue
            started = time.perf_counter()
            feed = _concat([i.inputs for i in batch])
            self._running += 1
            try:
                outputs = await loop.run_in_executor(self._executor, self.engine.run, feed)
            except Exception as exc:
                logger.exception("engine %s failed on a batch of %d", self.engine.name, len(batch))
                for i in batch:
                    if not i.future.done():
                        i.future.set_exception(exc)
                continue
            finally:
                self._running -= 1
            compute = time.perf_counter() - started
            rows = sum(i.rows for i in batch)
            self._note(compute, rows, [started - i.enqueued for i in batch])
            offset = 0
            for i in batch:
                # (rows_i, ...) slices of each (sum rows, ...) output, in queue order.
                part = {k: v[offset:offset + i.rows] for k, v in outputs.items()}
                offset += i.rows
                if not i.future.done():
                    i.future.set_result(BatchResult(part, started - i.enqueued, compute, rows))

    def _note(self, compute: float, rows: int, queued: list[float]) -> None:
        """Running mean of compute time (for Retry-After and the inline rule) and metrics."""
        self._avg_compute_s = 0.9 * self._avg_compute_s + 0.1 * compute
        m = self._metrics.engine(self.engine.name)
        m.compute.observe(compute)
        m.batch_size.observe(rows)
        for q in queued:
            m.queue.observe(q)


def _concat(items: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(items) == 1:
        return dict(items[0])
    # (sum of rows, ...) per input; the gather step guaranteed equal trailing shapes.
    return {k: np.concatenate([it[k] for it in items], axis=0) for k in items[0]}
