"""``karmma``: multimodal-to-multimodal distillation into one any-subset student.

KARMMA (Knowledge distillation for Action Recognition robust to Missing ModAlities;
Mohammadi et al., 2025, visinf.github.io/KARMMA). The paper trains in two stages:

1. a *teacher* fuses the features of frozen, pre-trained unimodal extractors with a
   transformer block and is trained with cross-entropy under modality dropout;
2. a lighter *student* (about half the teacher's compute) with learnable
   modality-specific tokens and missing-modality tokens is trained under modality dropout
   (at least one modality kept) to match the teacher's class probabilities by KL.

Adaptation to our rigs (pose 17×3 + 27 actions, one run of ``optim.epochs`` epochs):

* Stages are epoch ranges of the one run: epochs ``[0, U)`` train the teacher's unimodal
  encoders with their own heads (the "pre-trained extractors"; ours start from scratch);
  from ``U`` they are frozen and the teacher's fusion trains on their detached features
  (it already trains during ``[0, U)`` too, on detached features, so it is ready sooner);
  from ``U + T`` the whole teacher is frozen and the student distils from it.
  ``U`` and ``T`` default to a fifth of the run each. The student trains on the task loss
  from epoch 0 (the paper's student starts after the teacher; starting earlier only adds
  updates, within the same budget every method gets).
* The teacher sees the same modality-dropout mask as the student (both are trained under
  dropout; its prediction for that subset is the target). Its absent modalities are masked
  out of attention; the student instead attends to learned missing tokens.
* Distillation: T²·KL(softmax(z_T/T) ‖ softmax(z_S/T)) on the action logits, and, pose
  being a regression, feature distillation: MSE between the student's fused feature
  (projected to the teacher's width) and the teacher's fused summary token.
* Size: the teacher's encoders are ``teacher_width_scale``× wider, its features and fusion
  ``teacher_dim_scale``× wider and its fusion deeper. Encoder widths move in coarse steps
  (the depth CNN's group norms need widths in multiples of 8), so at the defaults the
  student costs about a third of the teacher's FLOPs rather than the paper's half
  (``tests/training/test_strategy_karmma.py`` measures the ratio).
* The student is the run's model (``model.fusion`` becomes :class:`TokenFusion`), so
  export writes one engine per subset: the subset's absent slots are the missing tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..encoders import EncoderConfig, create_encoder
from ..losses import task_loss
from ..model import NUM_ACTIONS, NUM_JOINTS, MultimodalModel
from ._base import Batch, register_strategy
from ._options import resolve_options
from ._staged import StagedStrategy, stage_epochs
from .fusion import FusionTransformer, ModalityTokens, TokenFusion


@dataclass(frozen=True)
class KarmmaOptions:
    #: Teacher encoder width and feature/fusion size relative to the student's.
    teacher_width_scale: int = 2
    teacher_dim_scale: float = 1.5
    teacher_depth: int = 2
    student_depth: int = 1
    heads: int = 4
    temperature: float = 2.0
    kd_weight: float = 1.0
    feature_weight: float = 1.0
    #: Stage lengths in epochs (None: a fifth of the run each).
    unimodal_epochs: int | None = None
    teacher_epochs: int | None = None


class TaskHeads(nn.Module):
    """Pose offsets (B, 17, 3) and action logits (B, 27) from a (B, dim) feature, for the
    heads the run's model has."""

    def __init__(self, dim: int, names: tuple[str, ...]) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.heads = nn.ModuleDict()
        if "joints" in names:
            self.heads["joints"] = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(),
                                                 nn.Linear(dim * 2, NUM_JOINTS * 3))
        if "action_logits" in names:
            self.heads["action_logits"] = nn.Linear(dim, NUM_ACTIONS)

    def forward(self, f: torch.Tensor, mean_pose: torch.Tensor | None) -> dict[str, torch.Tensor]:
        h = self.norm(f)
        out = {name: head(h) for name, head in self.heads.items()}
        if "joints" in out:
            out["joints"] = out["joints"].reshape(-1, NUM_JOINTS, 3)  # (B, 17, 3)
            if mean_pose is not None:
                out["joints"] = out["joints"] + mean_pose
        return out


class KarmmaTeacher(nn.Module):
    """Unimodal encoders (frozen after their stage), per-modality heads for that stage, and
    a transformer fusion over one token per modality."""

    def __init__(self, model: MultimodalModel, cfg: TrainConfig, opts: KarmmaOptions) -> None:
        super().__init__()
        mc = cfg.model
        self.dim = max(opts.heads,
                       round(mc.dim * opts.teacher_dim_scale / opts.heads) * opts.heads)
        # An integer multiple keeps every width the student's encoders accept valid.
        width = mc.width * opts.teacher_width_scale
        self.modalities = model.modalities
        names = model.output_names
        self.encoders = nn.ModuleDict({
            m: create_encoder(m, EncoderConfig(dim=self.dim, input_shape=model.input_shapes[m],
                                               width=width, centroids=mc.centroids,
                                               neighbours=mc.neighbours))
            for m in self.modalities})
        self.unimodal_heads = nn.ModuleDict({m: TaskHeads(self.dim, names)
                                             for m in self.modalities})
        self.tokens = ModalityTokens(self.modalities, self.dim, self.dim)
        self.fusion = FusionTransformer(self.dim, opts.teacher_depth, opts.heads)
        self.heads = TaskHeads(self.dim, names)

    def encode(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def fuse(self, feats: dict[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        mask = present > 0.5  # (B, M)
        keys = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)  # CLS always visible
        return self.fusion(self.tokens(feats, mask), keys)


@register_strategy("karmma")
class Karmma(StagedStrategy):
    def __init__(self, model: MultimodalModel, cfg: TrainConfig, **options: Any) -> None:
        super().__init__(model, cfg)
        self.opts = resolve_options(KarmmaOptions, "karmma", options)
        epochs = cfg.optim.epochs
        self.unimodal_until = stage_epochs(self.opts.unimodal_epochs, epochs, 0.2)
        self.teacher_until = self.unimodal_until + stage_epochs(self.opts.teacher_epochs,
                                                                epochs, 0.2)
        model.fusion = TokenFusion(model.modalities, cfg.model.dim, self.opts.student_depth,
                                   self.opts.heads)
        self.teacher = KarmmaTeacher(model, cfg, self.opts)
        self.feature_proj = nn.Linear(cfg.model.dim, self.teacher.dim)
        self._init_epoch_counter()

    @property
    def stage(self) -> str:
        e = self.epochs_done
        if e < self.unimodal_until:
            return "unimodal"
        return "teacher" if e < self.teacher_until else "distill"

    def forward(self, model: MultimodalModel, batch: Batch) -> dict[str, torch.Tensor]:
        stage = self.stage
        mean_pose = model.heads["joints"].mean_pose if "joints" in model.heads else None
        losses: dict[str, torch.Tensor] = {}
        teacher_out, f_teacher, teacher_losses = self._teacher_step(batch, stage, mean_pose)
        losses.update(teacher_losses)

        feats = model.encode(batch.inputs)
        fused = model.fuse(feats, batch.present)  # (B, dim)
        out = model.heads_forward(fused)
        losses.update(task_loss(out, batch.joints, batch.action, self.cfg.loss))
        total = losses["task"] + losses.get("teacher", fused.new_zeros(()))
        if stage == "distill":
            kd = self._distill(out, fused, teacher_out, f_teacher)
            losses.update(kd)
            total = total + kd["kd"]
        losses["loss"] = total
        return losses

    def _teacher_step(self, batch: Batch, stage: str, mean_pose: torch.Tensor | None
                      ) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
        """Teacher outputs and fused summary (detached) plus its own losses for this stage."""
        t = self.teacher
        losses: dict[str, torch.Tensor] = {}
        with torch.set_grad_enabled(torch.is_grad_enabled() and stage == "unimodal"):
            feats = t.encode(batch.inputs)
        total = batch.joints.new_zeros(())
        if stage == "unimodal":
            uni = [task_loss(t.unimodal_heads[m](f, mean_pose), batch.joints, batch.action,
                             self.cfg.loss)["task"] for m, f in feats.items()]
            losses["unimodal"] = torch.stack(uni).mean()
            total = total + losses["unimodal"]
        feats = {m: f.detach() for m, f in feats.items()}  # frozen features for the fusion
        with torch.set_grad_enabled(torch.is_grad_enabled() and stage != "distill"):
            f_teacher = t.fuse(feats, batch.present)
            out = t.heads(f_teacher, mean_pose)
        if stage != "distill":
            fusion_task = task_loss(out, batch.joints, batch.action, self.cfg.loss)["task"]
            losses["teacher_task"] = fusion_task
            total = total + fusion_task
            losses["teacher"] = total
        return ({k: v.detach() for k, v in out.items()}, f_teacher.detach(), losses)

    def _distill(self, out: dict[str, torch.Tensor], fused: torch.Tensor,
                 teacher_out: dict[str, torch.Tensor], f_teacher: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
        o = self.opts
        losses: dict[str, torch.Tensor] = {}
        kd = fused.new_zeros(())
        if "action_logits" in out:
            tau = o.temperature
            # Hinton et al.: T² keeps the soft-target gradients on the hard-label scale.
            kl = F.kl_div(F.log_softmax(out["action_logits"] / tau, -1),
                          F.log_softmax(teacher_out["action_logits"] / tau, -1),
                          reduction="batchmean", log_target=True) * tau * tau
            losses["kd_kl"] = kl
            kd = kd + o.kd_weight * kl
        feat = F.mse_loss(self.feature_proj(fused), f_teacher)
        losses["kd_feature"] = feat
        losses["kd"] = kd + o.feature_weight * feat
        return losses
