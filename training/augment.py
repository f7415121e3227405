"""Sensor-noise augmentation of training batches, against fitting subject identity.

Only noise a real sensor makes: depth pixels that return nothing (0 m, as the
preprocessing writes a hole) and range jitter on the returns; point clouds whose
points jitter in position and drop out (flag 0, row zeroed, as resampling pads). No
global translation, rotation or scale: absolute position is part of the pose target.
Applied to training batches only (never the meta-validation or evaluation splits), with
the trainer's seeded generator so runs stay deterministic and resumable.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rigserve.registry import Registry

from .config import AugmentConfig

Augmenter = Callable[[torch.Tensor, AugmentConfig, torch.Generator], torch.Tensor]
#: modality → augmenter; a modality without one (WiFi CSI) passes through unchanged.
AUGMENTERS: Registry[str, Augmenter] = Registry("augmenter")


@AUGMENTERS.register("depth")
def augment_depth(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, h, w) metres: N(0, σ²) range jitter on returns, then pixel dropout to 0."""
    valid = x > 0
    noisy = x + torch.randn(x.shape, generator=gen) * cfg.depth_jitter_m
    keep = torch.rand(x.shape, generator=gen) >= cfg.depth_dropout
    return torch.where(valid & keep, noisy.clamp_min(1e-3), torch.zeros_like(x))


def augment_points(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, P, C + 1) with xyz first and the valid flag last: xyz jitter on valid points,
    then point dropout (row zeroed, flag 0 — the encoders mask such rows)."""
    valid = x[..., -1:] > 0  # (B, P, 1)
    jitter = torch.zeros_like(x)
    jitter[..., :3] = torch.randn(*x.shape[:-1], 3, generator=gen) * cfg.point_jitter_m
    out = torch.where(valid, x + jitter, x)
    drop = (torch.rand(*x.shape[:-1], 1, generator=gen) < cfg.point_dropout) & valid
    # Keep at least one valid point per cloud that had one: an empty cloud is not noise.
    keep_any = (valid & ~drop).any(dim=1, keepdim=True)
    drop = drop & keep_any
    return torch.where(drop, torch.zeros_like(out), out)


AUGMENTERS.add("lidar", augment_points)
AUGMENTERS.add("mmwave", augment_points)


def augment_inputs(inputs: dict[str, torch.Tensor], cfg: AugmentConfig,
                   gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Each modality's batch through its augmenter (if any); a no-op when disabled."""
    if not cfg.enabled:
        return inputs
    out = {}
    for m, x in inputs.items():
        fn = AUGMENTERS.get(m)
        out[m] = x if fn is None else fn(x, cfg, gen)
    return out
