"""Tiny models and random model-ready data for the training tests."""

from __future__ import annotations

import torch
from rigserve.training.config import TrainConfig

SHAPES: dict[str, tuple[int, ...]] = {
    "depth": (1, 16, 24), "lidar": (32, 4), "mmwave": (16, 6), "wifi": (3, 114, 10),
}


def tiny_config(**overrides: object) -> TrainConfig:
    base = {"model.dim": 16, "model.width": 4, "model.centroids": 8, "model.neighbours": 4,
            "align.latent_dim": 8, "optim.batch_size": 8, "progress": False}
    base.update(overrides)
    return TrainConfig.from_sources(overrides=dict(base))


def random_inputs(modalities: tuple[str, ...], batch: int, seed: int = 0,
                  valid_points: int | None = None) -> dict[str, torch.Tensor]:
    """Model-ready tensors; point clouds carry a valid flag with the tail padded."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in modalities:
        x = torch.rand(batch, *SHAPES[m], generator=g)
        if m in ("lidar", "mmwave"):
            n = SHAPES[m][0] if valid_points is None else valid_points
            x[..., -1] = 0.0
            x[:, :n, -1] = 1.0
            x[:, n:, :-1] = 0.0
        out[m] = x
    return out
