"""``task_only``: no distillation, the task loss of the fused prediction under dropout.

The "no KD" ablation, and with dropout off and uniform weights the plain multimodal
baseline whose step time the benchmark compares against.
"""

from __future__ import annotations

import torch

from ..losses import task_loss
from ..model import MultimodalModel
from ._base import Batch, Strategy, register_strategy


@register_strategy("task_only")
class TaskOnly(Strategy):
    def forward(self, model: MultimodalModel, batch: Batch) -> dict[str, torch.Tensor]:
        out = model(batch.inputs, batch.present)
        losses = task_loss(out, batch.joints, batch.action, self.cfg.loss)
        losses["loss"] = losses["task"]
        return losses
