"""Liveness and queue logic of the rig stream, without a server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from rigserve.server.errors import InvalidInput
from rigserve.server.grpc.liveness import SensorLiveness
from rigserve.server.grpc.queues import DropOldestQueue, QueueClosedError, ordered_map


def test_liveness_holds_slow_sensors_then_marks_them_stale() -> None:
    live: SensorLiveness[str] = SensorLiveness(staleness_s=0.3)
    first = live.observe(0.0, {"depth": "d0", "wifi": "w0"})
    assert [(t.modality, t.to, t.reason) for t in first.transitions] == [
        ("depth", "online", "first_seen"), ("wifi", "online", "first_seen")]
    held = live.observe(0.2, {"depth": "d1"})
    assert held.frames == {"depth": "d1", "wifi": "w0"}
    assert held.stale == []
    gone = live.observe(0.4, {"depth": "d2"})
    assert gone.stale == ["wifi"]
    assert [(t.modality, t.to, t.last_seen) for t in gone.transitions] == [("wifi", "offline", 0.0)]
    assert live.online == ["depth"]
    assert live.observe(0.5, {"depth": "d3"}).transitions == []  # reported once
    back = live.observe(0.6, {"depth": "d4", "wifi": "w1"})
    assert [(t.modality, t.to, t.reason) for t in back.transitions] == [
        ("wifi", "online", "resumed")]
    with pytest.raises(InvalidInput, match="goes back in time"):
        live.observe(0.1, {"depth": "d5"})
    with pytest.raises(ValueError, match="positive"):
        SensorLiveness(0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_capture_time_is_refused_and_not_remembered(bad: float) -> None:
    live: SensorLiveness[str] = SensorLiveness(staleness_s=0.3)
    live.observe(1.0, {"depth": "d0", "wifi": "w0"})
    with pytest.raises(InvalidInput, match=rf"capture_time {bad} is not a finite number of "
                                           r"seconds; send the capture time, or 0"):
        live.observe(bad, {"depth": "d1"})
    # The stream goes on as if that frame never came: in order, wifi still held.
    after = live.observe(1.1, {"depth": "d2"})
    assert after.frames == {"depth": "d2", "wifi": "w0"}
    assert after.stale == []


def test_drop_oldest_queue_evicts_and_drains_after_close() -> None:
    async def scenario() -> list[object]:
        q: DropOldestQueue[int] = DropOldestQueue(2)
        evicted = [q.put(1), q.put(2), q.put(3)]
        assert q.oldest() == 2
        q.close()
        got = [await q.get(), await q.get()]
        with pytest.raises(QueueClosedError):
            await q.get()
        return [evicted, got]

    assert asyncio.run(scenario()) == [[None, None, 1], [2, 3]]


def test_ordered_map_answers_before_the_next_item_arrives_and_keeps_order() -> None:
    async def scenario() -> list[int]:
        more = asyncio.Event()

        async def items() -> AsyncIterator[int]:
            yield 1
            await more.wait()  # a client waiting for its answer before sending more
            for i in (2, 3, 4):
                yield i

        async def slow_first(i: int) -> int:
            await asyncio.sleep(0.05 if i == 2 else 0)
            return i * 10

        out = []
        async for r in ordered_map(items(), slow_first, max_inflight=3):
            out.append(r)
            more.set()
        return out

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == [10, 20, 30, 40]


def test_ordered_map_raises_a_failure_in_its_turn() -> None:
    async def scenario() -> list[int]:
        async def items() -> AsyncIterator[int]:
            for i in range(4):
                yield i

        async def fn(i: int) -> int:
            if i == 2:
                raise KeyError("boom")
            return i

        out: list[int] = []

        async def consume() -> None:
            async for r in ordered_map(items(), fn, max_inflight=2):
                out.append(r)

        with pytest.raises(KeyError, match="boom"):
            await consume()
        return out

    assert asyncio.run(scenario()) == [0, 1]


def test_ordered_map_stop_reading_answers_what_it_read_and_reads_no_more() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        read: list[int] = []
        release = asyncio.Event()

        async def items() -> AsyncIterator[int]:
            for i in range(3):
                read.append(i)
                yield i
            await asyncio.Event().wait()  # the client sends nothing more for now
            read.append(99)
            yield 99

        async def fn(i: int) -> int:
            await release.wait()  # all three in flight, nothing answered yet
            return i * 10

        answers = ordered_map(items(), fn, max_inflight=2)
        out: list[int] = []

        async def consume() -> None:
            async for r in answers:
                out.append(r)

        consumer = asyncio.ensure_future(consume())
        while len(read) < 3:  # item 2 is read and waits for a slot; then the read blocks
            await asyncio.sleep(0)
        answers.stop_reading()  # with item 2 read but not started
        release.set()
        await asyncio.wait_for(consumer, 5)
        return out, read

    out, read = asyncio.run(scenario())
    assert out == [0, 10, 20]  # every item read is answered, in order
    assert read == [0, 1, 2]


def test_ordered_map_stopped_while_waiting_for_an_item_ends_at_once() -> None:
    async def scenario() -> list[int]:
        async def items() -> AsyncIterator[int]:
            yield 1
            await asyncio.Event().wait()  # never sends again
            yield 2

        async def fn(i: int) -> int:
            return i

        answers = ordered_map(items(), fn, max_inflight=2)
        out = []
        async for r in answers:
            out.append(r)
            answers.stop_reading()  # the producer is blocked reading the next item
        return out

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == [1]


def test_ordered_map_stopped_before_iteration_reads_nothing() -> None:
    async def scenario() -> list[int]:
        read = []

        async def items() -> AsyncIterator[int]:
            read.append(1)
            yield 1

        async def fn(i: int) -> int:
            return i

        answers = ordered_map(items(), fn, max_inflight=1)
        answers.stop_reading()
        out = [r async for r in answers]
        return out + read

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == []
