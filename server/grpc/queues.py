"""Stream plumbing: a bounded drop-oldest queue and an order-keeping pipeline.

A rig streams in real time, so when inference falls behind the freshest frame is worth
more than the oldest one: :class:`DropOldestQueue` never blocks the reader and hands the
evicted item back so the caller can count and report it. :func:`ordered_map` runs a few
items concurrently (so the dynamic batcher can batch a stream's frames) while yielding
results in arrival order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
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


async def ordered_map(items: AsyncIterator[T], fn: Callable[[T], Awaitable[R]],
                      max_inflight: int) -> AsyncIterator[R]:
    """``fn`` over ``items`` with up to ``max_inflight`` running; results in input order.

    Reading ``items`` runs in its own task, so a result is yielded as soon as it is
    ready even while the next item has not arrived (a client waiting for its answer
    before sending more must not stall). An exception from ``fn`` propagates when its
    turn comes, one from ``items`` after the results before it; whatever is still
    running is cancelled when the consumer stops early.
    """
    if max_inflight < 1:
        raise ValueError(f"max_inflight must be at least 1, got {max_inflight}")
    started: asyncio.Queue[asyncio.Future[R] | None] = asyncio.Queue()
    slots = asyncio.Semaphore(max_inflight)

    async def produce() -> None:
        try:
            async for item in items:
                await slots.acquire()
                started.put_nowait(asyncio.ensure_future(fn(item)))
        finally:
            started.put_nowait(None)

    producer = asyncio.ensure_future(produce())
    try:
        while (future := await started.get()) is not None:
            try:
                yield await future
            finally:
                slots.release()
        await producer
    finally:
        producer.cancel()
        while not started.empty():
            left = started.get_nowait()
            if left is not None:
                left.cancel()
