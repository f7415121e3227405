"""Tiny trained-looking runs (the real model classes, random weights) for export tests."""

from __future__ import annotations

from collections.abc import Callable

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
