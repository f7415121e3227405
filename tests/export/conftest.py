"""Tiny trained-looking runs (the real model classes, random weights) for export tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from rigserve.sensors.preprocess import PreprocessSpec, model_input_shape
from rigserve.training.checkpoint import LoadedRun
from rigserve.training.config import ModelConfig
from rigserve.training.model import MultimodalModel

#: Small inputs keep an export of every subset to a few seconds.
TINY_SPEC = PreprocessSpec(depth_size=(24, 32), lidar_points=64, mmwave_points=32)


def tiny_run(modalities: tuple[str, ...] = ("depth", "lidar", "wifi"), seed: int = 0,
             extra_head: bool = False) -> LoadedRun:
    torch.manual_seed(seed)
    shapes = {m: model_input_shape(m, TINY_SPEC) for m in modalities}
    model = MultimodalModel(modalities, shapes,
                            ModelConfig(dim=16, width=4, centroids=8, neighbours=4))
    with torch.no_grad():
        # Uneven purified weights so the manifest's per-engine weights are distinguishable.
        model.fusion.theta.copy_(torch.linspace(-0.5, 0.5, len(modalities)))
    if extra_head:
        model.add_head("uncertainty", torch.nn.Sequential(torch.nn.Linear(16, 1),
                                                          torch.nn.Flatten(0)))
    model.eval()
    metrics = {"+".join(s): {"mpjpe_mm": 50.0 + len(s), "action_top1": 0.5}
               for s in _subsets(model.modalities)}
    return LoadedRun(model=model, modalities=model.modalities, spec=TINY_SPEC,
                     config={"strategy": "pta", "modalities": list(modalities)},
                     metrics=metrics, weights=model.purified_weights(), strategy="pta",
                     input_shapes=shapes)


def _subsets(mods: tuple[str, ...]) -> list[tuple[str, ...]]:
    from rigserve.sensors.specs import all_subsets

    return all_subsets(mods)


@pytest.fixture
def make_run() -> Callable[..., LoadedRun]:
    return tiny_run


def write_run_dir(run_dir: Path, modalities: tuple[str, ...], *, data: Path | None = None,
                  strategy: str = "task_only") -> Path:
    """A run folder `load_run` reads: checkpoint.pt, config.yaml and (with data) split.json.

    The weights are untrained; export does not care, it must reproduce them exactly.
    """
    from rigserve.training.checkpoint import CHECKPOINT, save_checkpoint
    from rigserve.training.config import TrainConfig
    from rigserve.training.factory import build_model

    cfg = TrainConfig.from_dict({
        "modalities": list(modalities), "strategy": strategy, "preset": strategy,
        "data": str(data or ""), "out": str(run_dir), "preprocess": TINY_SPEC.to_dict(),
        "model": {"dim": 16, "width": 4, "centroids": 8, "neighbours": 4},
    })
    shapes = {m: model_input_shape(m, TINY_SPEC) for m in modalities}
    torch.manual_seed(0)
    model, _ = build_model(cfg, shapes)
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"+".join(s): {"mpjpe_mm": 80.0, "pa_mpjpe_mm": 60.0, "action_top1": 0.2}
               for s in _subsets(tuple(sorted(modalities)))}
    save_checkpoint(run_dir / CHECKPOINT, {
        "config": cfg.to_dict(), "input_shapes": {m: list(s) for m, s in shapes.items()},
        "model": model.state_dict(), "metrics": metrics,
    })
    cfg.save(run_dir / "config.yaml")
    if data is not None:
        from rigserve.sensors.dataset import MMFiIndex, split_sequences

        split = split_sequences(MMFiIndex.scan(data), "random", "p3", seed=0, val_ratio=0.25)
        (run_dir / "split.json").write_text(json.dumps(split.to_dict()))
    return run_dir


def simulate_tiny(root: Path, modalities: tuple[str, ...]) -> Path:
    """8 sequences x 4 frames of the synthetic rig in MM-Fi layout (well under a second)."""
    from rigserve.sensors.simulator import simulate

    simulate(root, environments=["E01"], subjects=["S01", "S02", "S03", "S04"],
             actions=["A01", "A02"], frames=4, depth_size=(48, 64), modalities=list(modalities),
             workers=1)
    return root
