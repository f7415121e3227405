"""``robustseg``: RobustSeg's hybrid prototype distillation with student-to-teacher feedback.

Tan, Zheng, Liu, "Towards Robust Multi-Modal Semantic Segmentation with Teacher-Student
Framework and Hybrid Prototype Distillation" (CVPR 2026; arXiv 2505.12861). A teacher that
sees every modality and a student of the same architecture trained under modality dropout;
Hybrid Prototype Distillation (HPD):

* cross-modal prototype distillation — class prototypes p_c = Σ_j f_j 1[y_j=c] / Σ_j 1[y_j=c]
  of each modality's features, and L_hp = Σ_m KL(g^m ‖ p^{π(m)}) between the teacher's
  prototype of modality m and the student's prototype of a randomly permuted modality
  π(m), so no modality can be the only one carrying a class's semantics;
* intra-class feature variation (IFV) distillation on the *primary* modalities, chosen by
  the cosine similarity of each unimodal teacher feature to the fused one: the student's
  cos(f_j, p_{y_j}) must match the teacher's;
* feedback: the student, trained to work without the primary modalities, feeds its
  non-primary features back to the teacher; the teacher's primary encoders stay frozen,
  its non-primary encoders learn at a low learning rate.

Adaptation to our rigs: segmentation classes become (a) the 27 action labels and (b) pose
clusters — k-means over root-centred, scale-normalised skeletons of the batch (a pure
function of the batch, so the prototypes of teacher and student share one assignment);
pixels become samples. Prototypes are compared as distributions over the feature axis
(softmax/τ). Primary modalities are those whose mean cosine to the fused teacher feature
is at least the average over modalities, recomputed each batch. The teacher is a copy of
the student at initialisation (the paper initialises the student from the teacher); it
trains on the task with all modalities for ``teacher_epochs`` (default a fifth of the run),
then only through the feedback. The low learning rate is declared by ``lr_scales()`` for the
trainer's parameter groups (``_options.scaled_param_groups``). Fusion is the plain mean of
the present modalities (the method has no fusion weights of its own).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..losses import task_loss
from ..model import NUM_ACTIONS, MultimodalModel
from ._base import Batch, register_strategy
from ._options import resolve_options
from ._staged import StagedStrategy, stage_epochs
from .fusion import MeanFusion
from .prototypes import intra_class_variation, kmeans, masked_class_means, normalise_poses


@dataclass(frozen=True)
class RobustSegOptions:
    teacher_epochs: int | None = None
    proto_weight: float = 1.0
    ifv_weight: float = 1.0
    feedback_weight: float = 1.0
    #: Learning-rate multiplier of the teacher's encoders during feedback.
    feedback_lr_scale: float = 0.1
    pose_clusters: int = 8
    temperature: float = 1.0


@register_strategy("robustseg")
class RobustSeg(StagedStrategy):
    def __init__(self, model: MultimodalModel, cfg: TrainConfig, **options: Any) -> None:
        super().__init__(model, cfg)
        self.opts = resolve_options(RobustSegOptions, "robustseg", options)
        self.warmup = stage_epochs(self.opts.teacher_epochs, cfg.optim.epochs, 0.2)
        model.fusion = MeanFusion(model.modalities)
        self.teacher = copy.deepcopy(model)
        self._init_epoch_counter()

    def lr_scales(self) -> dict[str, float]:
        """Parameter-name prefixes (as seen from the trainer's ``TrainModule``) → LR
        multiplier: the teacher's encoders learn the feedback at a low rate."""
        return {"strategy.teacher.encoders.": self.opts.feedback_lr_scale}

    @property
    def distilling(self) -> bool:
        return self.epochs_done >= self.warmup

    def forward(self, model: MultimodalModel, batch: Batch) -> dict[str, torch.Tensor]:
        feats = model.encode(batch.inputs)
        out = model.heads_forward(model.fuse(feats, batch.present))
        losses = task_loss(out, batch.joints, batch.action, self.cfg.loss)
        t_feats, t_losses = self._teacher(model, batch)
        losses.update(t_losses)
        total = losses["task"] + t_losses.get("teacher", out[next(iter(out))].new_zeros(()))
        if self.distilling:
            primary = self._primary(t_feats)
            hpd = self._hpd(feats, {m: f.detach() for m, f in t_feats.items()}, batch, primary)
            losses.update(hpd)
            fb = self._feedback(feats, t_feats, primary)
            losses["feedback"] = fb
            total = total + hpd["kd"] + self.opts.feedback_weight * fb
            losses["primary"] = torch.tensor(float(sum(primary)))
        losses["loss"] = total
        return losses

    # ---- teacher --------------------------------------------------------------------

    def _teacher(self, model: MultimodalModel, batch: Batch
                 ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Teacher features of every modality; its task loss on all modalities in warm-up."""
        t = self.teacher
        feats = t.encode(batch.inputs)
        if self.distilling:
            return feats, {}
        full = torch.ones_like(batch.present)
        out = t.heads_forward(t.fuse(feats, full))
        if "joints" in out and "joints" in model.heads:
            # The trainer sets the student's mean pose; the teacher predicts offsets from it.
            out["joints"] = (out["joints"] - t.heads["joints"].mean_pose
                             + model.heads["joints"].mean_pose)
        return feats, {"teacher": task_loss(out, batch.joints, batch.action,
                                            self.cfg.loss)["task"]}

    def _primary(self, t_feats: dict[str, torch.Tensor]) -> list[bool]:
        """Primary modalities: mean cos(f_T^m, f_T) at least the average over modalities."""
        with torch.no_grad():
            fused = torch.stack(list(t_feats.values()), 1).mean(1)  # (B, dim), all present
            sims = torch.stack([F.cosine_similarity(f, fused, dim=-1).mean()
                                for f in t_feats.values()])
            return (sims >= sims.mean()).tolist()

    def _feedback(self, feats: dict[str, torch.Tensor], t_feats: dict[str, torch.Tensor],
                  primary: list[bool]) -> torch.Tensor:
        """Student → teacher on the non-primary modalities; primary encoders get no gradient."""
        terms = [F.mse_loss(t_feats[m], feats[m].detach())
                 for m, is_primary in zip(feats, primary, strict=True) if not is_primary]
        ref = next(iter(feats.values()))
        return torch.stack(terms).mean() if terms else ref.new_zeros(())

    # ---- hybrid prototype distillation --------------------------------------------

    def _labelings(self, batch: Batch) -> list[tuple[torch.Tensor, int]]:
        """(labels, number of classes): actions, and pose clusters of this batch."""
        out = [(batch.action, NUM_ACTIONS)]
        k = min(self.opts.pose_clusters, len(batch))
        if k >= 2:
            poses = normalise_poses(batch.joints)
            centres = kmeans(poses, k, iters=10, seed=0)
            out.append((torch.cdist(poses, centres).argmin(1), k))
        return out

    def _hpd(self, feats: dict[str, torch.Tensor], t_feats: dict[str, torch.Tensor],
             batch: Batch, primary: list[bool]) -> dict[str, torch.Tensor]:
        mods = list(feats)
        perm = torch.randperm(len(mods)).tolist()  # π: the random modality permutation
        proto_terms, ifv_terms = [], []
        for labels, k in self._labelings(batch):
            s_protos, t_protos = {}, {}
            for i, m in enumerate(mods):
                s_protos[m] = masked_class_means(feats[m], labels, k, batch.present[:, i] > 0.5)
                t_protos[m] = masked_class_means(t_feats[m], labels, k)
            for i, m in enumerate(mods):
                proto_terms.append(self._proto_kl(t_protos[m], s_protos[mods[perm[i]]]))
                if primary[i]:
                    ifv_terms.append(self._ifv(feats[m], t_feats[m], labels,
                                               p_s=s_protos[m][0], p_t=t_protos[m][0],
                                               present=batch.present[:, i] > 0.5))
        ref = next(iter(feats.values()))
        proto = torch.stack(proto_terms).mean() if proto_terms else ref.new_zeros(())
        ifv = torch.stack(ifv_terms).mean() if ifv_terms else ref.new_zeros(())
        return {"proto": proto, "ifv": ifv,
                "kd": self.opts.proto_weight * proto + self.opts.ifv_weight * ifv}

    def _proto_kl(self, teacher: tuple[torch.Tensor, torch.Tensor],
                  student: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """KL(softmax(g_c/τ) ‖ softmax(p_c/τ)) averaged over classes both sides have."""
        (g, g_n), (p, p_n) = teacher, student
        both = (g_n > 0) & (p_n > 0)
        if not bool(both.any()):
            return p.sum() * 0.0
        tau = self.opts.temperature
        return F.kl_div(F.log_softmax(p[both] / tau, -1), F.log_softmax(g[both] / tau, -1),
                        reduction="batchmean", log_target=True)

    @staticmethod
    def _ifv(f_s: torch.Tensor, f_t: torch.Tensor, labels: torch.Tensor, *, p_s: torch.Tensor,
             p_t: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """MSE between student and teacher IFV on the samples where the student has m."""
        if not bool(present.any()):
            return f_s.sum() * 0.0
        gap = intra_class_variation(f_s, labels, p_s) - intra_class_variation(f_t, labels, p_t)
        return gap[present].pow(2).mean()
