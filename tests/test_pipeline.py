"""The whole pipeline on a tiny simulated rig: simulate → train → export → serve.

The contract that matters most end to end: what the server answers for a rig's raw MM-Fi
files equals what the trained PyTorch model predicts for the same frames, for whichever
sensors are online, because preprocessing is one implementation (`sensors.preprocess`)
and every engine passed parity at export.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from rigserve.export import ExportOptions, export_run
from rigserve.sensors.formats import frame_path, read_frame
from rigserve.sensors.preprocess import PreprocessSpec, preprocess_frame
from rigserve.sensors.simulator import simulate
from rigserve.training import TrainConfig, load_run, train

from tests.server.live_server import serve_in_thread

MODALITIES = ("depth", "lidar", "wifi")
SPEC = PreprocessSpec(depth_size=(24, 32), lidar_points=64, mmwave_points=32)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("pipeline")
    data, run, repo = root / "data", root / "run", root / "repo"
    simulate(data, subjects=["S01", "S02", "S11", "S12"], actions=["A01", "A12"], frames=6,
             depth_size=(60, 80), modalities=MODALITIES, seed=3, workers=1)
    cfg = TrainConfig.from_sources(overrides={
        "data": str(data), "out": str(run), "modalities": list(MODALITIES), "seed": 0,
        "progress": False, "optim.epochs": 1, "optim.batch_size": 8,
        "model.dim": 16, "model.width": 4, "model.centroids": 8, "model.neighbours": 4,
        "preprocess": SPEC.to_dict(),
    })
    torch.set_num_threads(1)
    train(cfg)
    export_run(run, repo, ExportOptions(parity_frames=8, calibration_frames=8))
    return data, run, repo


def _raw(data: Path, modality: str, frame: int) -> np.ndarray:
    return read_frame(modality, frame_path(data, "E01", "S01", "A12", modality, frame))


@pytest.mark.parametrize("online", [("depth", "lidar", "wifi"), ("lidar", "wifi"), ("depth",),
                                    ("wifi",)])
def test_server_answer_equals_the_pytorch_model_on_the_same_raw_files(
        pipeline: tuple[Path, Path, Path], online: tuple[str, ...]) -> None:
    data, run, repo = pipeline
    model = load_run(run).model.eval()
    subset_model = model.subset_model(online)
    with serve_in_thread(repo, intra_op_threads=1) as server:
        for frame in (1, 4):
            files = {m: (f"frame{frame:03d}", frame_path(data, "E01", "S01", "A12", m, frame)
                         .read_bytes()) for m in online}
            r = httpx.post(f"{server.url}/v1/rigs/test-rig/infer", files=files, timeout=30)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["subset"] == "+".join(sorted(online))
            assert set(body["dropped"]) == set(MODALITIES) - set(online)
            inputs = [torch.from_numpy(preprocess_frame(m, _raw(data, m, frame), SPEC))[None]
                      for m in sorted(online)]
            with torch.no_grad():
                joints, logits = subset_model(*inputs)[:2]
            np.testing.assert_allclose(np.asarray(body["joints"]), joints[0].numpy(), atol=1e-4)
            probs = torch.softmax(logits[0], 0).numpy()
            served = np.asarray(list(body["action_probs"].values()))
            np.testing.assert_allclose(served, probs, atol=1e-4)


def test_manifest_carries_the_runs_validation_metrics_and_purified_weights(
        pipeline: tuple[Path, Path, Path]) -> None:
    from rigserve.export.manifest import load_manifest

    _, run, repo = pipeline
    loaded = load_run(run)
    manifest = load_manifest(repo, verify=True)
    assert len(manifest.subsets()) == 7
    for entry in manifest.engines:
        name = "+".join(entry.subset)
        assert entry.metrics["mpjpe_mm"] == pytest.approx(loaded.metrics[name]["mpjpe_mm"])
        assert sum(entry.weights.values()) == pytest.approx(1.0)
        assert set(entry.weights) == set(entry.subset)
