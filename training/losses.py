"""Task losses and the metrics they mirror."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LossConfig


def joint_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample MPJPE (B,) in metres of (B, 17, 3) poses, for per-sample weighting."""
    return (pred - target).pow(2).sum(-1).add(1e-9).sqrt().mean(-1)


def joint_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean joint distance (MPJPE, metres) over (B, 17, 3); trains what we report."""
    return joint_errors(pred, target).mean()


def task_loss(outputs: dict[str, torch.Tensor], joints: torch.Tensor, action: torch.Tensor,
              cfg: LossConfig) -> dict[str, torch.Tensor]:
    """``{"task", "pose", "action"}`` for whichever heads the model has."""
    out: dict[str, torch.Tensor] = {}
    total = joints.new_zeros(())
    if "joints" in outputs:
        out["pose"] = joint_error(outputs["joints"], joints)
        total = total + cfg.pose_weight * out["pose"]
    if "action_logits" in outputs:
        out["action"] = F.cross_entropy(outputs["action_logits"], action)
        total = total + cfg.action_weight * out["action"]
    out["task"] = total
    return out
