"""Overload answers 429 + Retry-After and never loses an accepted request; reloads under
load swap engines without failing one."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from tests.server.live_server import ServerHandle, serve_in_thread
from tests.server.repo_factory import build_tiny_repo


def _full_batch_request(batch: int) -> tuple[bytes, dict[str, str]]:
    """A Triton binary request for all four inputs at ``batch`` rows."""
    shapes = {"depth": (1, 48, 64), "lidar": (256, 4), "mmwave": (64, 6), "wifi": (3, 114, 10)}
    rng = np.random.default_rng(0)
    arrays = {m: rng.random((batch, *s)).astype(np.float32) for m, s in shapes.items()}
    head = {"inputs": [{"name": m, "shape": list(a.shape), "datatype": "FP32",
                        "parameters": {"binary_data_size": a.nbytes}} for m, a in arrays.items()],
            "parameters": {"binary_data_output": True}}
    raw = json.dumps(head).encode()
    body = raw + b"".join(a.tobytes() for a in arrays.values())
    return body, {"Inference-Header-Content-Length": str(len(raw))}


async def _fire(url: str, n: int, body: bytes, headers: dict[str, str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.post(url, content=body, headers=headers)
                                      for _ in range(n)))


def test_overload_answers_every_accepted_request_and_429s_the_rest(tmp_path: Path) -> None:
    # A wide model: a 32-row run takes longer than the server takes to parse the next
    # request, so requests arrive faster than the engine answers them.
    slow_repo = build_tiny_repo(tmp_path / "slow", hidden=512)
    body, headers = _full_batch_request(batch=32)
    # inline_max_ms=0: every request goes through the queue, whose bound is under test.
    with serve_in_thread(slow_repo, max_queue_size=1, max_batch_size=1,
                         inline_max_ms=0) as live:
        responses = asyncio.run(_fire(f"{live.url}/v2/models/rig/infer", 48, body, headers))
        metrics = httpx.get(f"{live.url}/metrics").text
    codes = Counter(r.status_code for r in responses)
    assert set(codes) == {200, 429}, codes
    for r in responses:
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert "queue full" in r.json()["error"]
        else:
            n = int(r.headers["Inference-Header-Content-Length"])
            assert len(r.content) > n  # the binary outputs arrived
    assert 'rigserve_queue_rejections_total{engine="rig.depth+lidar+mmwave+wifi"}' in metrics
    assert f'code="429",protocol="kserve_http",subset="depth+lidar+mmwave+wifi"}} {codes[429]}.0' \
        in metrics


async def _load_while_reloading(url: str, reloads: int) -> tuple[Counter[int], list[int]]:
    body, headers = _full_batch_request(batch=1)
    codes: Counter[int] = Counter()
    stop = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            r = await client.post(f"{url}/v2/models/rig/infer", content=body, headers=headers)
            codes[r.status_code] += 1

    async with httpx.AsyncClient(timeout=60) as client:
        workers = [asyncio.create_task(client_loop(client)) for _ in range(6)]
        reload_codes = []
        for _ in range(reloads):
            await asyncio.sleep(0.15)
            r = await client.post(f"{url}/v2/repository/models/rig/load")
            reload_codes.append(r.status_code)
        await asyncio.sleep(0.15)
        stop.set()
        await asyncio.gather(*workers)
    return codes, reload_codes


def test_reload_under_load_fails_no_request(tiny_repo: Path) -> None:
    with serve_in_thread(tiny_repo) as live:
        before = live.app.state.service.repository
        codes, reload_codes = asyncio.run(_load_while_reloading(live.url, reloads=3))
        after = live.app.state.service.repository
        metrics = httpx.get(f"{live.url}/metrics").text
    assert reload_codes == [200, 200, 200]
    assert set(codes) == {200}, codes
    assert codes[200] > 20
    assert after is not before
    assert 'rigserve_repository_reloads_total{result="success"} 3.0' in metrics


def test_failed_reload_answers_400_like_triton_and_keeps_serving(tiny_repo: Path,
                                                                 tmp_path: Path) -> None:
    repo = Path(shutil.copytree(tiny_repo, tmp_path / "repo"))
    body, headers = _full_batch_request(batch=1)
    with serve_in_thread(repo) as live:
        with (repo / "engines/lidar.fp32.onnx").open("ab") as fh:
            fh.write(b"tampered")
        r = httpx.post(f"{live.url}/v2/repository/models/rig/load")
        # Triton answers a model that cannot load with 400, not a server error.
        assert r.status_code == 400
        assert "load failed" in r.json()["error"]
        assert "sha256 mismatch" in r.json()["error"]
        assert "still serving" in r.json()["error"]
        ok = httpx.post(f"{live.url}/v2/models/rig/infer", content=body, headers=headers)
        assert ok.status_code == 200
        metrics = httpx.get(f"{live.url}/metrics").text
    assert 'rigserve_repository_reloads_total{result="failure"} 1.0' in metrics


def test_loading_an_unknown_model_answers_400_naming_the_models(live: ServerHandle) -> None:
    r = httpx.post(f"{live.url}/v2/repository/models/nope/load")
    assert r.status_code == 400
    assert "failed to load 'nope'" in r.json()["error"]
    assert "rig.depth+lidar" in r.json()["error"]


def test_a_manifest_removed_under_the_server_fails_the_reload_with_400(
        tiny_repo: Path, tmp_path: Path) -> None:
    repo = Path(shutil.copytree(tiny_repo, tmp_path / "repo"))
    with serve_in_thread(repo) as live:
        (repo / "manifest.json").unlink()
        r = httpx.post(f"{live.url}/v2/repository/models/rig/load")
        assert r.status_code == 400
        assert "manifest.json" in r.json()["error"]
        assert httpx.get(f"{live.url}/v2/health/ready").status_code == 200
