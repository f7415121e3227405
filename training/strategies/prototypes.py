"""Class prototypes and pose clusters shared by the prototype-based strategies.

RobustSeg's hybrid prototype distillation and the uncertainty-resilient transfer both
summarise a batch of features by *prototypes*: the mean feature of each class, computed
only over the samples where the feature exists (a modality dropped for a sample has no
feature there). RobustSeg (CVPR 2026) writes it per class c as

    p_c = Σ_j f_j · 1[y_j = c] / Σ_j 1[y_j = c]

Our rigs have two heads. Action labels give classes directly; pose is a regression, so
its "classes" are clusters of normalised poses (k-means over root-centred, scale-free
skeletons of each batch, see ``robustseg``). Both share the functions below.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_class_means(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                       mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class mean of ``features`` (N, D) over the rows where ``mask`` (N,) holds.

    Returns ``(prototypes (K, D), counts (K,))``; a class without any masked-in sample
    has a zero prototype and count 0 so callers can skip it (``counts > 0``).
    """
    if features.ndim != 2:
        raise ValueError(f"features: expected (N, D), got shape {tuple(features.shape)}")
    if labels.shape != features.shape[:1]:
        raise ValueError(f"labels: expected shape ({features.shape[0]},), "
                         f"got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    weight = F.one_hot(labels.long(), num_classes).to(features.dtype)  # (N, K)
    if mask is not None:
        if mask.shape != labels.shape:
            raise ValueError(f"mask: expected shape {tuple(labels.shape)}, got {tuple(mask.shape)}")
        weight = weight * mask.to(features.dtype).unsqueeze(1)
    counts = weight.sum(0)  # (K,)
    sums = weight.t() @ features  # (K, D)
    protos = sums / counts.clamp_min(1.0).unsqueeze(1)
    return protos, counts


def cosine_to_prototypes(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every feature (N, D) to every prototype (K, D) → (N, K)."""
    return F.normalize(features, dim=-1) @ F.normalize(prototypes, dim=-1).t()


def intra_class_variation(features: torch.Tensor, labels: torch.Tensor,
                          prototypes: torch.Tensor) -> torch.Tensor:
    """IFV (Wang et al., ECCV 2020, used by RobustSeg): cos(f_j, p_{y_j}) per sample → (N,)."""
    own = prototypes[labels.long()]  # (N, D)
    return F.cosine_similarity(features, own, dim=-1)


# ---- pose clusters: classes for the regression head -----------------------------------

def normalise_poses(joints: torch.Tensor, root: int = 0) -> torch.Tensor:
    """Root-centred, unit-RMS skeletons flattened: (N, J, 3) → (N, J*3).

    Clusters should group *shapes* of the body (squat vs. arm raised), not where the
    person stands or how tall they are.
    """
    if joints.ndim != 3 or joints.shape[-1] != 3:
        raise ValueError(f"joints: expected (N, J, 3), got shape {tuple(joints.shape)}")
    centred = joints - joints[:, root:root + 1]  # (N, J, 3)
    scale = centred.pow(2).sum(-1).mean(-1).sqrt().clamp_min(1e-6)  # (N,)
    return (centred / scale[:, None, None]).flatten(1)


def kmeans(points: torch.Tensor, k: int, iters: int = 25, seed: int = 0) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding; returns centres (k, D). Deterministic per seed."""
    n = points.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of points ({n}), got k={k}")
    gen = torch.Generator().manual_seed(seed)
    pts = points.detach().float()
    centres = pts[torch.randint(n, (1,), generator=gen)]
    for _ in range(1, k):
        d2 = torch.cdist(pts, centres).pow(2).min(1).values  # (N,)
        probs = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full_like(d2, 1.0 / n)
        centres = torch.cat([centres, pts[torch.multinomial(probs, 1, generator=gen)]])
    for _ in range(iters):
        assign = torch.cdist(pts, centres).argmin(1)
        means, counts = masked_class_means(pts, assign, k)
        # An emptied cluster keeps its old centre rather than collapsing to zero.
        new = torch.where(counts[:, None] > 0, means, centres)
        if torch.allclose(new, centres):
            break
        centres = new
    return centres
