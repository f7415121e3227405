"""Stream plumbing: a bounded drop-oldest queue and an order-keeping pipeline.

A rig streams in real time, so when inference falls behind the freshest frame is worth
more than the oldest one: :class:`DropOldestQueue` never blocks the reader and hands the
evicted item back so the caller can count and report it. :func:`ordered_map` runs a few
items concurrently (so the dynamic batcher can batch a stream's frames) while yielding
results in arrival order, and can stop reading without losing what it read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueClosedError(Exception):
    """The queue was closed and is empty."""


class DropOldestQueue(Generic[T]):
    """Bounded FIFO for one consumer; a put into a full queue evicts the oldest item."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> T | None:
        """Append ``item``; returns the evicted oldest item when the queue was full."""
        if self._closed:
            raise QueueClosedError("put on a closed queue")
        dropped = self._items.popleft() if len(self._items) >= self.maxsize else None
        self._items.append(item)
        self._ready.set()
        return dropped

    def oldest(self) -> T | None:
        return self._items[0] if self._items else None

    def close(self) -> None:
        """No more puts; ``get`` drains what is left, then raises :class:`QueueClosedError`."""
        self._closed = True
        self._ready.set()

    async def get(self) -> T:
        while not self._items:
            if self._closed:
                raise QueueClosedError("queue closed")
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()


class OrderedMap(Generic[T, R]):
    """``fn`` over ``items`` with up to ``max_inflight`` running; results in input order.

    Reading ``items`` runs in its own task, so a result is yielded as soon as it is
    ready even while the next item has not arrived (a client waiting for its answer
    before sending more must not stall). An exception from ``fn`` propagates when its
    turn comes, one from ``items`` after the results before it; whatever is still
    running is cancelled when the consumer stops early. :meth:`stop_reading` ends the
    map early without losing work: no more items are read, and every item already read
    is still answered. Iterate it once.
    """

    def __init__(self, items: AsyncIterable[T], fn: Callable[[T], Awaitable[R]],
                 max_inflight: int) -> None:
        if max_inflight < 1:
            raise ValueError(f"max_inflight must be at least 1, got {max_inflight}")
        self._items = aiter(items)
        self._fn = fn
        self._max_inflight = max_inflight
        self._producer: asyncio.Future[None] | None = None
        self._reading = False
        #: Set by :meth:`stop_reading`.
        self.stopped = False

    def stop_reading(self) -> None:
        """Read no more items; those already read are answered, then iteration ends. A
        read in progress is abandoned (an item is either read whole or not at all)."""
        self.stopped = True
        if self._reading and self._producer is not None:
            self._producer.cancel()

    async def _produce(self, started: asyncio.Queue[asyncio.Future[R] | None],
                       slots: asyncio.Semaphore) -> None:
        try:
            while not self.stopped:
                self._reading = True
                try:
                    item = await anext(self._items)
                except StopAsyncIteration:
                    break
                finally:
                    self._reading = False
                # Never cancelled from here on: an item read is always started.
                await slots.acquire()
                started.put_nowait(asyncio.ensure_future(self._fn(item)))
        finally:
            started.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[R]:
        started: asyncio.Queue[asyncio.Future[R] | None] = asyncio.Queue()
        slots = asyncio.Semaphore(self._max_inflight)
        # Stopped before iteration began: the producer reads nothing and ends at once.
        producer = self._producer = asyncio.ensure_future(self._produce(started, slots))
        try:
            while (future := await started.get()) is not None:
                try:
                    yield await future
                finally:
                    slots.release()
            try:
                await producer
            except asyncio.CancelledError:
                if not (self.stopped and producer.cancelled()):
                    raise
        finally:
            producer.cancel()
            while not started.empty():
                left = started.get_nowait()
                if left is not None:
                    left.cancel()


def ordered_map(items: AsyncIterable[T], fn: Callable[[T], Awaitable[R]],
                max_inflight: int) -> OrderedMap[T, R]:
    """:class:`OrderedMap` of ``fn`` over ``items`` (iterate it with ``async for``)."""
    return OrderedMap(items, fn, max_inflight)
