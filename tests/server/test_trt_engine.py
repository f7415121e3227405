"""Native TensorRT plans: chosen only where they can run, and equal to ONNX Runtime when they do.

The GPU tests need `tensorrt`, cuda-python and a CUDA device; elsewhere they are skipped
with the reason :func:`rigserve.server.trt_engine.unavailable_reason` gives.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from rigserve.export.manifest import EngineEntry, load_manifest, sha256_file, write_manifest
from rigserve.server.engines import EngineOptions, OrtEngine, backend_available
from rigserve.server.errors import InvalidInput
from rigserve.server.repository import load_repository
from rigserve.server.trt_engine import unavailable_reason

TRT_REASON = unavailable_reason()
needs_gpu = pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT: {TRT_REASON}")
SHAPES = {"depth": (1, 48, 64), "lidar": (256, 4)}


def _add_plan_entry(repo: Path, subset: tuple[str, ...], plan: bytes, max_batch: int) -> None:
    """Give ``subset`` a TensorRT entry beside its ONNX one, as export does on a GPU."""
    name = "+".join(subset)
    rel = f"engines/{name}.fp16.plan"
    (repo / rel).write_bytes(plan)
    manifest = load_manifest(repo)
    onnx_entry = manifest.engines_for(name)[0]
    entry = dataclasses.replace(onnx_entry, path=rel, format="tensorrt", precision="fp16",
                                sha256=sha256_file(repo / rel), max_batch=max_batch)
    write_manifest(repo, dataclasses.replace(manifest, engines=(*manifest.engines, entry)))


def _feed(subset: tuple[str, ...], batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: rng.random((batch, *SHAPES[m])).astype(np.float32) for m in subset}


@pytest.mark.skipif(TRT_REASON is None, reason="this machine can run TensorRT plans")
def test_a_plan_is_never_chosen_where_tensorrt_cannot_run(tiny_repo: Path,
                                                          tmp_path: Path) -> None:
    repo = Path(shutil.copytree(tiny_repo, tmp_path / "repo"))
    # Not a plan at all: proves the server never even tries to deserialize it here.
    _add_plan_entry(repo, ("lidar",), b"not a TensorRT plan", max_batch=8)
    assert not backend_available("tensorrt")
    assert TRT_REASON is not None
    assert "tensorrt" in TRT_REASON or "CUDA" in TRT_REASON
    loaded = load_repository(repo, precision=["fp16", "fp32"], options=EngineOptions())
    lidar = loaded.engines["lidar"]
    assert (lidar.entry.format, lidar.entry.precision) == ("onnx", "fp32")
    assert lidar.engine.provider == "CPUExecutionProvider"


def _build_plan(tiny_repo: Path, subset: tuple[str, ...], out: Path, max_batch: int) -> bytes:
    from rigserve.export.tensorrt import build_plan

    name = "+".join(subset)
    shapes = {m: SHAPES[m] for m in subset}
    return build_plan(tiny_repo / f"engines/{name}.fp32.onnx", out / f"{name}.fp16.plan",
                      shapes, max_batch=max_batch, fp16=True).read_bytes()


@pytest.mark.gpu
@needs_gpu
def test_trt_engine_matches_onnx_runtime_at_every_batch_of_its_profile(
        tiny_repo: Path, tmp_path: Path) -> None:
    from rigserve.server.trt_engine import TrtEngine

    subset = ("depth", "lidar")
    plan = tmp_path / "p.plan"
    plan.write_bytes(_build_plan(tiny_repo, subset, tmp_path, max_batch=8))
    trt_engine = TrtEngine("rig.depth+lidar", plan, EngineOptions(instances=2))
    ort_engine = OrtEngine("rig.depth+lidar", tiny_repo / "engines/depth+lidar.fp32.onnx",
                           EngineOptions())
    assert set(trt_engine.input_names) == set(subset)
    assert (trt_engine.min_batch, trt_engine.max_batch) == (1, 8)
    for batch in (1, 3, 8):
        feed = _feed(subset, batch, seed=batch)
        got, want = trt_engine.run(feed), ort_engine.run(feed)
        for k in ("joints", "action_logits"):
            assert got[k].shape == want[k].shape
            assert got[k].dtype == np.float32
            np.testing.assert_allclose(got[k], want[k], rtol=2e-2, atol=2e-2)  # fp16 plan
    with pytest.raises(InvalidInput, match=r"outside the plan's profile \[1, 1, 48, 64\]"):
        trt_engine.run(_feed(subset, 9))
    trt_engine.close()


@pytest.mark.gpu
@needs_gpu
def test_trt_instances_run_concurrently_with_their_own_buffers(tiny_repo: Path,
                                                               tmp_path: Path) -> None:
    from rigserve.server.trt_engine import TrtEngine

    subset = ("lidar",)
    plan = tmp_path / "p.plan"
    plan.write_bytes(_build_plan(tiny_repo, subset, tmp_path, max_batch=4))
    engine = TrtEngine("rig.lidar", plan, EngineOptions(instances=3))
    feeds = [_feed(subset, 1 + i % 4, seed=i) for i in range(24)]
    want = [engine.run(f)["joints"] for f in feeds]
    got: dict[int, np.ndarray] = {}

    def worker(idx: list[int]) -> None:
        for i in idx:
            got[i] = engine.run(feeds[i])["joints"]

    threads = [threading.Thread(target=worker, args=(list(range(k, 24, 3)),)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(24):  # each answer is its own batch's, never another thread's rows
        np.testing.assert_array_equal(got[i], want[i])
    engine.close()


@pytest.mark.gpu
@needs_gpu
def test_server_prefers_the_plan_and_reports_the_tensorrt_provider(
        tiny_repo: Path, tmp_path: Path) -> None:
    repo = Path(shutil.copytree(tiny_repo, tmp_path / "repo"))
    _add_plan_entry(repo, ("lidar",), _build_plan(tiny_repo, ("lidar",), tmp_path, 8), 8)
    loaded = load_repository(repo, precision=["fp16", "fp32"], options=EngineOptions(),
                             max_batch=8)
    lidar = loaded.engines["lidar"]
    assert (lidar.entry.format, lidar.engine.provider) == ("tensorrt", "TensorRT")
    assert isinstance(lidar.entry, EngineEntry)
    feed = _feed(("lidar",), 2)
    want = OrtEngine("o", tiny_repo / "engines/lidar.fp32.onnx", EngineOptions()).run(feed)
    np.testing.assert_allclose(lidar.engine.run(feed)["joints"], want["joints"],
                               rtol=2e-2, atol=2e-2)
