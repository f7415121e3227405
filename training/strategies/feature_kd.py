"""``feature_kd``: plain feature-MSE distillation to the purified teacher (no diffusion).

The "no diffusion" ablation of PTA: L_inner = L_task + λ·mean_i MSE(f_i, f_T).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import task_loss
from ..model import MultimodalModel
from ._base import Batch, Strategy, register_strategy
from ._teacher import teacher_feature


@register_strategy("feature_kd")
class FeatureKD(Strategy):
    def forward(self, model: MultimodalModel, batch: Batch) -> dict[str, torch.Tensor]:
        feats = model.encode(batch.inputs)
        out = model.heads_forward(model.fuse(feats, batch.present))
        losses = task_loss(out, batch.joints, batch.action, self.cfg.loss)
        f_t = teacher_feature(model, feats)
        losses["kd"] = torch.stack([F.mse_loss(f, f_t) for f in feats.values()]).mean()
        losses["loss"] = losses["task"] + self.kd_weight() * losses["kd"]
        return losses
