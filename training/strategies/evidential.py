"""Dirichlet evidence, uncertainty and prototype contrast for uncertainty-aware transfer.

Subjective logic as used by evidential deep learning (Sensoy et al., NeurIPS 2018) and by
Jang, "Uncertainty-Resilient Multimodal Learning via Consistency-Guided Cross-Modal
Transfer" (arXiv 2511.15741): non-negative evidence e_k for each of K classes defines a
Dirichlet with α_k = e_k + 1 and strength S = Σ_k α_k; the belief mass is b_k = e_k / S,
the expected class probability α_k / S and the uncertainty mass u = K / S, so
Σ_k b_k + u = 1 and u falls from 1 (no evidence) towards 0 as evidence grows.
Here evidence comes from the cosine similarity of a feature to class prototypes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from rigserve.training.strategies.prototypes import cosine_to_prototypes


@dataclass(frozen=True)
class Dirichlet:
    alpha: torch.Tensor  # (N, K)

    @property
    def strength(self) -> torch.Tensor:  # S, (N,)
        return self.alpha.sum(-1)

    @property
    def uncertainty(self) -> torch.Tensor:  # u = K / S, (N,)
        return self.alpha.shape[-1] / self.strength

    @property
    def probs(self) -> torch.Tensor:  # E[p_k] = α_k / S, (N, K)
        return self.alpha / self.strength.unsqueeze(-1)

    @property
    def belief(self) -> torch.Tensor:  # b_k = e_k / S, (N, K)
        return (self.alpha - 1.0) / self.strength.unsqueeze(-1)


def dirichlet_from_evidence(evidence: torch.Tensor) -> Dirichlet:
    """α = e + 1 for non-negative evidence (N, K)."""
    if evidence.ndim != 2:
        raise ValueError(f"evidence: expected (N, K), got shape {tuple(evidence.shape)}")
    if bool((evidence < 0).any()):
        raise ValueError("evidence must be non-negative (use softplus/relu/exp on scores)")
    return Dirichlet(evidence + 1.0)


def prototype_evidence(features: torch.Tensor, prototypes: torch.Tensor,
                       temperature: float = 0.1) -> torch.Tensor:
    """e_k = softplus(cos(f, p_k) / τ): close to a prototype → large evidence for its class."""
    return F.softplus(cosine_to_prototypes(features, prototypes) / temperature)


def evidential_loss(dist: Dirichlet, labels: torch.Tensor, kl_weight: float) -> torch.Tensor:
    """Per-sample EDL loss (N,): expected cross-entropy under Dir(α),
    Σ_k y_k (ψ(S) − ψ(α_k)), plus kl_weight · KL(Dir(α̃) ‖ Dir(1)) on the evidence left
    for wrong classes (α̃ = y + (1 − y) α), which pushes misleading evidence to zero."""
    alpha = dist.alpha
    k = alpha.shape[-1]
    y = F.one_hot(labels.long(), k).to(alpha.dtype)
    ce = (y * (torch.digamma(dist.strength).unsqueeze(-1) - torch.digamma(alpha))).sum(-1)
    alpha_t = y + (1.0 - y) * alpha
    s_t = alpha_t.sum(-1)
    kl = (torch.lgamma(s_t) - torch.lgamma(torch.tensor(float(k), dtype=alpha.dtype))
          - torch.lgamma(alpha_t).sum(-1)
          + ((alpha_t - 1.0) * (torch.digamma(alpha_t) - torch.digamma(s_t).unsqueeze(-1))).sum(-1))
    return ce + kl_weight * kl


def prototype_infonce(features: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor,
                      valid: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Per-sample prototype InfoNCE (N,): −log softmax_k(cos(f, p_k)/τ)[y], over classes with a
    prototype (``valid`` (K,) bool). Features of one modality are pulled to the class
    prototypes of another, the cross-modal consistency the method builds on."""
    logits = cosine_to_prototypes(features, prototypes) / temperature  # (N, K)
    logits = logits.masked_fill(~valid.unsqueeze(0), float("-inf"))
    return F.cross_entropy(logits, labels.long(), reduction="none")


def pairwise_disagreement(probs: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Cross-modal disagreement (N,) in [0, 1]: mean total-variation distance between the
    class distributions of every pair of present modalities.

    ``probs`` (N, M, K) per-modality distributions, ``present`` (N, M) bool. Fewer than two
    present modalities → 0 (nothing to disagree with).
    """
    m = probs.shape[1]
    tv = 0.5 * (probs.unsqueeze(2) - probs.unsqueeze(1)).abs().sum(-1)  # (N, M, M)
    pair = present.unsqueeze(2) & present.unsqueeze(1)
    pair = pair & ~torch.eye(m, dtype=torch.bool, device=probs.device)
    n_pairs = pair.sum((1, 2))
    return (tv * pair).sum((1, 2)) / n_pairs.clamp_min(1)


def combine_uncertainty(u: torch.Tensor, disagreement: torch.Tensor) -> torch.Tensor:
    """Probabilistic OR: the prediction is trusted only if the evidence is strong *and* the
    modalities agree, so 1 − u_total = (1 − u)(1 − d)."""
    return 1.0 - (1.0 - u) * (1.0 - disagreement)
