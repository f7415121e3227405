"""Dynamic batching on a real ONNX Runtime engine: batches form under load, rows stay theirs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
from rigserve.server.batcher import BatchResult, DynamicBatcher
from rigserve.server.engines import EngineOptions, OrtEngine
from rigserve.server.errors import Overloaded
from rigserve.server.metrics import Metrics


def _engine(tiny_repo: Path) -> OrtEngine:
    return OrtEngine("rig.lidar", tiny_repo / "engines/lidar.fp32.onnx", EngineOptions())


def _rows(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((1, 256, 4)).astype(np.float32) for _ in range(n)]


def test_concurrent_requests_share_batches_and_get_their_own_rows(tiny_repo: Path) -> None:
    engine = _engine(tiny_repo)
    rows = _rows(32)

    async def main() -> list[int]:
        b = DynamicBatcher(engine, max_batch=8, max_delay_s=0.02, max_queue=64,
                           metrics=Metrics(), more_coming=lambda n: n < 8)
        b.start()
        results = await asyncio.gather(*(b.submit({"lidar": r}) for r in rows))
        await b.close()
        for r, res in zip(rows, results, strict=True):
            np.testing.assert_allclose(res.outputs["joints"], engine.run({"lidar": r})["joints"],
                                       rtol=1e-5, atol=1e-6)
        return [res.batch_rows for res in results]

    sizes = asyncio.run(main())
    assert max(sizes) == 8  # batches formed, capped at max_batch
    assert all(1 <= s <= 8 for s in sizes)


def test_lone_request_does_not_wait_for_the_queue_delay(tiny_repo: Path) -> None:
    engine = _engine(tiny_repo)

    async def main() -> float:
        b = DynamicBatcher(engine, max_batch=8, max_delay_s=0.5, max_queue=4,
                           metrics=Metrics())
        b.start()
        res = await b.submit({"lidar": _rows(1)[0]})
        await b.close()
        return res.queue_s

    assert asyncio.run(main()) < 0.1  # far below the 0.5 s delay: nobody else was coming


def test_full_queue_raises_overloaded_with_a_retry_hint(tiny_repo: Path) -> None:
    engine = _engine(tiny_repo)

    async def main() -> list[BatchResult]:
        b = DynamicBatcher(engine, max_batch=1, max_delay_s=0, max_queue=2,
                           metrics=Metrics())
        # Not started: nothing drains, so the third submit finds the queue full.
        tasks = [asyncio.create_task(b.submit({"lidar": r})) for r in _rows(3)]
        done = await asyncio.gather(*tasks[2:], return_exceptions=True)
        b.start()
        await asyncio.gather(*tasks[:2])
        await b.close()
        return done

    (err,) = asyncio.run(main())
    assert isinstance(err, Overloaded)
    assert err.headers()["Retry-After"] == "1"
    assert "queue full (2 requests waiting)" in str(err)


def test_a_request_abandoned_in_the_queue_leaves_it_and_is_never_run(tiny_repo: Path) -> None:
    noting = _ThreadNoting(_engine(tiny_repo))

    async def main() -> tuple[int, list[BatchResult]]:
        b = DynamicBatcher(noting, max_batch=1, max_delay_s=0, max_queue=2, metrics=Metrics())
        # Not started: both requests wait in the queue; the first caller gives up.
        first, second = (asyncio.create_task(b.submit({"lidar": r})) for r in _rows(2))
        await asyncio.sleep(0.01)
        assert b.queued == 2
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        queued_after_cancel = b.queued  # its slot is free for a live request at once
        third = asyncio.create_task(b.submit({"lidar": _rows(3)[2]}))
        b.start()
        answers = await asyncio.gather(second, third)
        await b.close()
        return queued_after_cancel, answers

    queued, answers = asyncio.run(main())
    assert queued == 1
    assert [a.batch_rows for a in answers] == [1, 1]
    assert [rows for _, rows in noting.calls] == [1, 1]  # the abandoned row never ran


class _ThreadNoting:
    """The real engine, noting which thread ran each batch and its rows."""

    def __init__(self, engine: OrtEngine) -> None:
        self.engine = engine
        self.name, self.provider = engine.name, engine.provider
        self.input_names, self.output_names = engine.input_names, engine.output_names
        self.calls: list[tuple[int, int]] = []  # (thread id, rows)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append((threading.get_ident(), next(iter(inputs.values())).shape[0]))
        return self.engine.run(inputs)


def _counted_submit(b: DynamicBatcher, inflight: list[int]
                    ) -> Callable[[np.ndarray], Awaitable[BatchResult]]:
    """Submit as the service does: counted in flight from before submit until answered."""
    async def call(x: np.ndarray) -> BatchResult:
        inflight[0] += 1
        try:
            return await b.submit({"lidar": x})
        finally:
            inflight[0] -= 1
    return call


def test_lone_request_runs_at_once_on_the_loop_thread(tiny_repo: Path) -> None:
    engine = _ThreadNoting(_engine(tiny_repo))
    inflight = [0]

    async def main() -> list[BatchResult]:
        b = DynamicBatcher(engine, max_batch=8, max_delay_s=0.5, max_queue=4,
                           metrics=Metrics(), inline_max_s=0.05,
                           more_coming=lambda n: inflight[0] > n)
        b.start()
        call = _counted_submit(b, inflight)
        results = [await call(r) for r in _rows(3)]  # one after another: always alone
        await b.close()
        return results

    results = asyncio.run(main())
    loop_thread = threading.get_ident()
    assert engine.calls == [(loop_thread, 1)] * 3  # no hand-off to an engine thread
    assert all(r.queue_s == 0.0 and r.batch_rows == 1 for r in results)


def test_requests_arriving_together_still_batch_with_immediate_dispatch_on(
        tiny_repo: Path) -> None:
    engine = _ThreadNoting(_engine(tiny_repo))
    rows = _rows(16)
    inflight = [0]

    async def main() -> list[BatchResult]:
        b = DynamicBatcher(engine, max_batch=8, max_delay_s=0.05, max_queue=64,
                           metrics=Metrics(), inline_max_s=0.05,
                           more_coming=lambda n: inflight[0] > n)
        b.start()
        call = _counted_submit(b, inflight)
        results = await asyncio.gather(*(call(r) for r in rows))
        await b.close()
        return results

    results = asyncio.run(main())
    loop_thread = threading.get_ident()
    assert all(tid != loop_thread for tid, _ in engine.calls)  # none ran inline
    assert max(n for _, n in engine.calls) > 1  # they were batched
    assert sum(n for _, n in engine.calls) == 16
    for r, res in zip(rows, results, strict=True):
        np.testing.assert_allclose(res.outputs["joints"],
                                   engine.engine.run({"lidar": r})["joints"], rtol=1e-5,
                                   atol=1e-6)


def test_a_slow_engine_is_never_run_on_the_loop(tiny_repo: Path) -> None:
    engine = _ThreadNoting(_engine(tiny_repo))

    async def main() -> None:
        # inline_max_s=0: every engine is "slow", so even a lone request is handed off.
        b = DynamicBatcher(engine, max_batch=8, max_delay_s=0.5, max_queue=4,
                           metrics=Metrics(), inline_max_s=0.0)
        b.start()
        await b.submit({"lidar": _rows(1)[0]})
        await b.close()

    asyncio.run(main())
    assert engine.calls[0][0] != threading.get_ident()


class _FailsOnNegative:
    """The real engine, except that a batch holding a negative value raises, as a broken
    engine would; the batcher must answer everyone and keep serving."""

    def __init__(self, engine: OrtEngine) -> None:
        self.engine = engine
        self.name, self.provider = engine.name, engine.provider
        self.input_names, self.output_names = engine.input_names, engine.output_names

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if (inputs["lidar"] < 0).any():
            raise RuntimeError("engine exploded")
        return self.engine.run(inputs)


def test_an_engine_failure_answers_its_batch_and_the_engine_thread_lives_on(
        tiny_repo: Path) -> None:
    engine = _FailsOnNegative(_engine(tiny_repo))
    good, bad = _rows(2)[0], -_rows(2)[1]

    async def main() -> tuple[list[object], BatchResult]:
        b = DynamicBatcher(engine, max_batch=8, max_delay_s=0.5, max_queue=64,
                           metrics=Metrics(), more_coming=lambda n: n < 4)
        b.start()
        # Four at once share a batch with the bad one: all four get the engine's error.
        first = await asyncio.gather(*(b.submit({"lidar": x}) for x in (good, bad, good, good)),
                                     return_exceptions=True)
        after = await b.submit({"lidar": good})  # the same engine thread still answers
        await b.close()
        return first, after

    first, after = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in first)
    np.testing.assert_allclose(after.outputs["joints"],
                               engine.engine.run({"lidar": good})["joints"], rtol=1e-5,
                               atol=1e-6)
