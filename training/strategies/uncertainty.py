"""``uncertainty``: uncertainty-resilient, consistency-guided cross-modal transfer.

Jang, "Uncertainty-Resilient Multimodal Learning via Consistency-Guided Cross-Modal
Transfer" (arXiv 2511.15741): modalities are projected into a shared space where
cross-modal semantic consistency drives learning —

* prototype-based alignment: each modality's features are pulled, by InfoNCE over class
  prototypes, to the prototypes that *another* modality forms for the same classes;
* Dirichlet evidence from prototype similarity: e_k = softplus(a·cos(f, p_k) + b),
  α = e + 1, S = Σα, uncertainty u = K/S (``evidential``), trained with the evidential
  loss (expected cross-entropy under Dir(α) + annealed KL of misleading evidence);
* the per-sample uncertainty reweights the loss: a sample's task loss is weighted by its
  confidence 1 − u (normalised to mean one over the batch), a transfer term by the
  confidence of its *source* modality, so noisy frames and labels pull less;
* cross-modal disagreement (mean total-variation distance between the present modalities'
  class distributions) is a second uncertainty score, combined as 1 − (1 − u)(1 − d).

Adaptation to our rigs: classes are the 27 actions (labels exist for every frame, also
when the action head is off); pose is reweighted by the same confidence. The student is
the run's model and gains an ``uncertainty`` output (B,) read from the fused feature: its
Dirichlet u over learned prototypes, trained towards the combined score so that it also
rises when sensors disagree. An exported subset engine sees only the fused feature, so it
returns this learned estimate (the exact disagreement needs per-modality features).
Fusion is the plain mean of the present modalities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..losses import joint_errors
from ..model import NUM_ACTIONS, MultimodalModel
from ._base import Batch, register_strategy
from ._options import resolve_options
from ._staged import StagedStrategy, stage_epochs
from .evidential import (
    Dirichlet,
    combine_uncertainty,
    dirichlet_from_evidence,
    evidential_loss,
    pairwise_disagreement,
    prototype_infonce,
)
from .fusion import MeanFusion
from .prototypes import cosine_to_prototypes, masked_class_means


@dataclass(frozen=True)
class UncertaintyOptions:
    temperature: float = 0.1
    align_weight: float = 0.5
    edl_weight: float = 0.5
    calibration_weight: float = 1.0
    #: Epochs over which the evidential KL term ramps from 0 to 1 (None: half the run).
    kl_anneal_epochs: int | None = None


class EvidenceHead(nn.Module):
    """Dirichlet over the 27 actions from a (normalised) feature; ``forward`` returns u (B,)."""

    def __init__(self, dim: int, temperature: float, classes: int = NUM_ACTIONS) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.randn(classes, dim) * 0.1)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.bias = nn.Parameter(torch.zeros(()))

    def dirichlet(self, h: torch.Tensor) -> Dirichlet:
        cos = cosine_to_prototypes(h, self.prototypes)  # (B, K)
        return dirichlet_from_evidence(F.softplus(cos * self.log_scale.exp() + self.bias))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.dirichlet(h).uncertainty  # (B,)


@register_strategy("uncertainty")
class UncertaintyTransfer(StagedStrategy):
    def __init__(self, model: MultimodalModel, cfg: TrainConfig, **options: Any) -> None:
        super().__init__(model, cfg)
        self.opts = resolve_options(UncertaintyOptions, "uncertainty", options)
        self.anneal = max(1, stage_epochs(self.opts.kl_anneal_epochs, cfg.optim.epochs, 0.5))
        model.fusion = MeanFusion(model.modalities)
        model.add_head("uncertainty", EvidenceHead(cfg.model.dim, self.opts.temperature))
        self._init_epoch_counter()

    def forward(self, model: MultimodalModel, batch: Batch) -> dict[str, torch.Tensor]:
        o = self.opts
        head: EvidenceHead = model.heads["uncertainty"]  # type: ignore[assignment]
        feats = model.encode(batch.inputs)
        fused = model.fuse(feats, batch.present)
        out = model.heads_forward(fused)
        present = batch.present > 0.5  # (B, M)

        dist = head.dirichlet(model.norm(fused))
        per_mod = [head.dirichlet(model.norm(f)) for f in feats.values()]
        disagreement = pairwise_disagreement(torch.stack([d.probs for d in per_mod], 1), present)
        u_total = combine_uncertainty(dist.uncertainty, disagreement)
        confidence = (1.0 - u_total).detach()
        weights = confidence / confidence.mean().clamp_min(1e-6)

        losses = self._weighted_task(out, batch, weights)
        kl_weight = min(1.0, self.epochs_done / self.anneal)
        edl = [evidential_loss(dist, batch.action, kl_weight).mean()]
        edl += [evidential_loss(d, batch.action, kl_weight)[present[:, i]].mean()
                for i, d in enumerate(per_mod) if bool(present[:, i].any())]
        losses["edl"] = torch.stack(edl).mean()
        losses["align"] = self._align(feats, per_mod, batch.action, present)
        # Teach the exported head the disagreement it cannot see at inference.
        losses["calibration"] = F.mse_loss(dist.uncertainty, u_total.detach())
        losses["uncertainty"] = dist.uncertainty.mean().detach()
        losses["disagreement"] = disagreement.mean().detach()
        losses["loss"] = (losses["task"] + o.edl_weight * losses["edl"]
                          + o.align_weight * losses["align"]
                          + o.calibration_weight * losses["calibration"])
        return losses

    def _weighted_task(self, out: dict[str, torch.Tensor], batch: Batch,
                       weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """``losses.task_loss`` with each sample's terms weighted by its confidence."""
        lc = self.cfg.loss
        losses: dict[str, torch.Tensor] = {}
        total = weights.new_zeros(())
        # What the unweighted objective (losses.task_loss) would read, for comparison with
        # other strategies: the same per-sample terms, plainly averaged.
        unweighted = weights.new_zeros(())
        if "joints" in out:
            err = joint_errors(out["joints"], batch.joints)  # (B,)
            losses["pose"] = (weights * err).mean()
            total = total + lc.pose_weight * losses["pose"]
            unweighted = unweighted + lc.pose_weight * err.mean()
        if "action_logits" in out:
            ce = F.cross_entropy(out["action_logits"], batch.action, reduction="none")
            losses["action"] = (weights * ce).mean()
            total = total + lc.action_weight * losses["action"]
            unweighted = unweighted + lc.action_weight * ce.mean()
        losses["task"] = total
        losses["task_unweighted"] = unweighted.detach()
        return losses

    def _align(self, feats: dict[str, torch.Tensor], per_mod: list[Dirichlet],
               labels: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Σ over ordered pairs (src → dst): InfoNCE of dst's features against src's class
        prototypes, each sample weighted by src's confidence 1 − u_src."""
        mods = list(feats)
        terms = []
        for i, src in enumerate(mods):
            protos, counts = masked_class_means(feats[src], labels, NUM_ACTIONS, present[:, i])
            if not bool((counts > 0).any()):
                continue
            confidence = (1.0 - per_mod[i].uncertainty).detach()
            for j, dst in enumerate(mods):
                pair = present[:, i] & present[:, j]
                if j == i or not bool(pair.any()):
                    continue
                # rows where both exist: the label's prototype then exists on src's side
                nce = prototype_infonce(feats[dst][pair], labels[pair], protos, counts > 0,
                                        self.opts.temperature)
                terms.append((confidence[pair] * nce).mean())
        ref = next(iter(feats.values()))
        return torch.stack(terms).mean() if terms else ref.new_zeros(())
