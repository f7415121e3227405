"""``freqkd``: frequency-decoupled cross-modal knowledge distillation (FD-CMKD).

Liu, Zhang, Huang, Xu, Yang, "Distilling Cross-Modal Knowledge via Feature
Disentanglement" (AAAI 2026, arXiv 2511.19887). Low-frequency feature components carry
what modalities share, high-frequency ones what is specific to each; so

    L = L_task + α·MSE(low(ŝ), low(t̂)) + β·logMSE(high(ŝ), high(t̂)) + γ·L_scale + L_shared

with ŝ, t̂ the scale-normalised student and teacher features, bands split by a Fourier
transform (``spectral.frequency_split``), L_scale matching the features' first two
moments, and a classifier shared by teacher and student.

Adaptation to our rigs: the teacher is the model's own fused feature over *all*
modalities (detached; it also trains on the task, as the full-modality path), the
students are the single-modality features f_m (B, dim); the FFT runs along the feature
axis, our features being vectors (the paper's maps have spatial/token axes). The shared
classifier is the model's heads: each f_m goes through the same pose and action heads and
takes the task loss, which is what makes a single sensor's feature readable by the
fused model's heads when the others drop out. The evaluated path is the fused prediction
under the run's modality dropout; fusion is the plain mean of the present modalities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..losses import task_loss
from ..model import MultimodalModel
from ._base import Batch, Strategy, register_strategy
from ._options import resolve_options
from .fusion import MeanFusion
from .spectral import frequency_split, log_mse, scale_consistency, scale_normalise


@dataclass(frozen=True)
class FreqKDOptions:
    #: Fraction of rFFT bins in the low band.
    keep: float = 0.25
    low_weight: float = 1.0
    high_weight: float = 0.1
    scale_weight: float = 0.1
    shared_weight: float = 0.5
    teacher_weight: float = 0.5


@register_strategy("freqkd")
class FreqKD(Strategy):
    def __init__(self, model: MultimodalModel, cfg: TrainConfig, **options: Any) -> None:
        super().__init__(model, cfg)
        self.opts = resolve_options(FreqKDOptions, "freqkd", options)
        if not 0.0 < self.opts.keep <= 1.0:
            raise ValueError(f"freqkd: keep must lie in (0, 1], got {self.opts.keep}")
        model.fusion = MeanFusion(model.modalities)

    def forward(self, model: MultimodalModel, batch: Batch) -> dict[str, torch.Tensor]:
        o, lc = self.opts, self.cfg.loss
        feats = model.encode(batch.inputs)
        out = model.heads_forward(model.fuse(feats, batch.present))
        losses = task_loss(out, batch.joints, batch.action, lc)

        f_full = model.fuse(feats, torch.ones_like(batch.present))
        teacher_task = task_loss(model.heads_forward(f_full), batch.joints, batch.action,
                                 lc)["task"]
        target = f_full.detach()
        losses.update(self.decoupled(feats, target))
        shared = torch.stack([task_loss(model.heads_forward(f), batch.joints, batch.action,
                                        lc)["task"] for f in feats.values()]).mean()
        losses["teacher_task"] = teacher_task
        losses["shared"] = shared
        losses["loss"] = (losses["task"] + o.teacher_weight * teacher_task + losses["kd"]
                          + o.shared_weight * shared)
        return losses

    def decoupled(self, feats: dict[str, torch.Tensor], target: torch.Tensor
                  ) -> dict[str, torch.Tensor]:
        """Band-wise alignment of every unimodal feature to the teacher feature."""
        o = self.opts
        t_low, t_high = frequency_split(scale_normalise(target), o.keep)
        low, high, scale = [], [], []
        for f in feats.values():
            s_low, s_high = frequency_split(scale_normalise(f), o.keep)
            low.append(F.mse_loss(s_low, t_low))
            high.append(log_mse(s_high, t_high))
            scale.append(scale_consistency(f, target))
        out = {"low": torch.stack(low).mean(), "high": torch.stack(high).mean(),
               "scale": torch.stack(scale).mean()}
        out["kd"] = o.low_weight * out["low"] + o.high_weight * out["high"] + \
            o.scale_weight * out["scale"]
        return out
