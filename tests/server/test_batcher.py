"""Dynamic batching on a real ONNX Runtime engine: batches form under load, rows stay theirs."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rigserve.server.batcher import DynamicBatcher
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
        with ThreadPoolExecutor(2) as pool:
            b = DynamicBatcher(engine, max_batch=8, max_delay_s=0.02, max_queue=64,
                               executor=pool, metrics=Metrics(), more_coming=lambda n: n < 8)
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
        with ThreadPoolExecutor(1) as pool:
            b = DynamicBatcher(engine, max_batch=8, max_delay_s=0.5, max_queue=4,
                               executor=pool, metrics=Metrics())
            b.start()
            res = await b.submit({"lidar": _rows(1)[0]})
            await b.close()
        return res.queue_s

    assert asyncio.run(main()) < 0.1  # far below the 0.5 s delay: nobody else was coming


def test_full_queue_raises_overloaded_with_a_retry_hint(tiny_repo: Path) -> None:
    engine = _engine(tiny_repo)

    async def main() -> list[object]:
        with ThreadPoolExecutor(1) as pool:
            b = DynamicBatcher(engine, max_batch=1, max_delay_s=0, max_queue=2,
                               executor=pool, metrics=Metrics())
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
