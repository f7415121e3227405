"""The multimodal model: per-modality encoders, purified fusion weights and heads.

Common feature space: each encoder returns one vector ``f_i`` of size ``dim`` per
sample, layer-normalised per modality (``modality_norm``): encoders of different kinds
(a CNN's flattened map, a PointNet's max-pool) put their features on very different
scales, and a weighted sum of unnormalised features is dominated by the loudest
encoder whatever θ says. Fusion is PTA's purified weighted sum (sec. 3, "Purify"):

    w = softmax(θ);   w̃_i = w_i·m_i / Σ_j w_j·m_j;   f = Σ_i w̃_i f_i

with ``m_i`` = 1 when modality i is present. Heads read ``LayerNorm(f)``: the pose head
returns ``joints`` (B, 17, 3) metres (an offset from the training-set mean pose), the
action head ``action_logits`` (B, 27). Strategies may add heads (e.g. ``uncertainty``)
with :meth:`MultimodalModel.add_head`; every head is exported with each subset engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .config import ModelConfig
from .encoders import EncoderConfig, create_encoder

NUM_JOINTS = 17
NUM_ACTIONS = 27


class PoseHead(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * 2), nn.GELU(),
                                 nn.Linear(dim * 2, NUM_JOINTS * 3))
        self.register_buffer("mean_pose", torch.zeros(NUM_JOINTS, 3))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f).reshape(-1, NUM_JOINTS, 3) + self.mean_pose  # (B, 17, 3)


class MultimodalModel(nn.Module):
    """Encoders for ``modalities`` (kept sorted), fusion weights θ and output heads."""

    def __init__(self, modalities: Sequence[str], input_shapes: Mapping[str, tuple[int, ...]],
                 cfg: ModelConfig) -> None:
        super().__init__()
        if not modalities:
            raise ValueError("a model needs at least one modality")
        self.modalities: tuple[str, ...] = tuple(sorted(modalities))
        missing = [m for m in self.modalities if m not in input_shapes]
        if missing:
            raise ValueError(f"no input shape for modality {missing}; have {sorted(input_shapes)}")
        self.cfg = cfg
        self.encoders = nn.ModuleDict({
            m: create_encoder(m, EncoderConfig(dim=cfg.dim, input_shape=tuple(input_shapes[m]),
                                               width=cfg.width, centroids=cfg.centroids,
                                               neighbours=cfg.neighbours))
            for m in self.modalities
        })
        # Identity when off, so the state-dict keys do not depend on the switch's value.
        self.feature_norms = nn.ModuleDict({
            m: nn.LayerNorm(cfg.dim) if cfg.modality_norm else nn.Identity()
            for m in self.modalities})
        self.input_shapes = {m: tuple(input_shapes[m]) for m in self.modalities}
        #: Fusion of the per-modality features; strategies may swap it (e.g. token fusion).
        self.fusion: nn.Module = WeightedFusion(self.modalities)
        self.norm = nn.LayerNorm(cfg.dim)
        self.heads = nn.ModuleDict()
        if cfg.pose_head:
            self.heads["joints"] = PoseHead(cfg.dim)
        if cfg.action_head:
            self.heads["action_logits"] = nn.Linear(cfg.dim, NUM_ACTIONS)
        if not self.heads:
            raise ValueError("model.pose_head and model.action_head are both off; enable one")

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.heads.keys())

    def add_head(self, name: str, head: nn.Module) -> None:
        """Add an output head reading the fused feature (B, dim); strategies call this."""
        if name in self.heads:
            raise ValueError(f"head {name!r} already exists; heads: {list(self.heads)}")
        self.heads[name] = head

    # ---- pieces ------------------------------------------------------------------

    def encode(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Features (B, dim) of every model modality present in ``inputs``."""
        return {m: self.encode_one(m, inputs[m]) for m in self.modalities if m in inputs}

    def encode_one(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """One modality's feature f_i (B, dim): its encoder, then its own normalisation."""
        return self.feature_norms[modality](self.encoders[modality](x))

    @property
    def theta(self) -> torch.Tensor | None:
        """Purified modality logits θ, or None when the fusion has none."""
        theta = getattr(self.fusion, "theta", None)
        return theta if isinstance(theta, torch.Tensor) else None

    def weights(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """w̃ = softmax(θ) renormalised over the present modalities; mask (B, M) or (M,).

        A fusion without θ counts as uniform weights.
        """
        theta = self.theta
        if theta is None:
            theta = torch.zeros(len(self.modalities))
        return purified_weights(theta, mask)

    def fuse(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """The fused feature (B, dim) from ``feats`` and the presence mask (B, M)."""
        return self.fusion(feats, mask)

    def heads_forward(self, fused: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.norm(fused)
        return {name: head(h) for name, head in self.heads.items()}

    def mask_for(self, present: Sequence[str], batch: int) -> torch.Tensor:
        row = torch.tensor([1.0 if m in present else 0.0 for m in self.modalities])
        return row.to(self.norm.weight.device).expand(batch, -1)

    # ---- inference ---------------------------------------------------------------

    def forward(self, inputs: Mapping[str, torch.Tensor],
                mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Predict from ``inputs``; ``mask`` (B, M) marks the present modalities per
        sample (default: exactly the model modalities found in ``inputs``)."""
        feats = self.encode(inputs)
        if not feats:
            raise ValueError(f"no model modality in inputs {sorted(inputs)}; "
                             f"model takes {list(self.modalities)}")
        batch = next(iter(feats.values())).shape[0]
        if mask is None:
            mask = self.mask_for(tuple(feats), batch)
        return self.heads_forward(self.fuse(feats, mask))

    def purified_weights(self, subset: Sequence[str] | None = None) -> dict[str, float]:
        mods = tuple(sorted(subset)) if subset else self.modalities
        mask = self.mask_for(mods, 1)[0]
        w = self.weights(mask).detach().cpu()
        return {m: float(w[i]) for i, m in enumerate(self.modalities) if m in mods}

    def subset_model(self, subset: Sequence[str]) -> SubsetModel:
        return SubsetModel(self, subset)


class SubsetModel(nn.Module):
    """The export view of one modality subset: ``forward(*inputs)`` in sorted order.

    No data-dependent control flow: the subset is fixed at construction, so
    ``torch.onnx.export`` traces one static graph per subset.
    """

    def __init__(self, model: MultimodalModel, subset: Sequence[str]) -> None:
        super().__init__()
        subset = tuple(sorted(subset))
        unknown = [m for m in subset if m not in model.modalities]
        if not subset or unknown:
            raise ValueError(f"subset {list(subset)}: must be a non-empty subset of "
                             f"{list(model.modalities)}")
        self.model = model
        self.subset = subset
        self.input_names: tuple[str, ...] = subset
        self.output_names: tuple[str, ...] = model.output_names
        # (M,) presence row of this subset in model order; expanded to the batch in forward.
        row = torch.tensor([1.0 if m in subset else 0.0 for m in model.modalities])
        self.register_buffer("present", row, persistent=False)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.subset):
            raise ValueError(f"expected {len(self.subset)} inputs ({', '.join(self.subset)}), "
                             f"got {len(inputs)}")
        feats = {m: self.model.encode_one(m, x) for m, x in zip(self.subset, inputs, strict=True)}
        batch = inputs[0].shape[0]
        fused = self.model.fuse(feats, self.present.unsqueeze(0).expand(batch, -1))
        out = self.model.heads_forward(fused)
        return tuple(out[name] for name in self.output_names)


def purified_weights(theta: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """PTA's purified weights: w = softmax(θ), renormalised over the present modalities."""
    w = torch.softmax(theta, dim=0)
    if mask is None:
        return w
    w = w * mask
    return w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12)


class WeightedFusion(nn.Module):
    """f = Σ_i w̃_i f_i with w̃ = softmax(θ) renormalised over the present modalities."""

    def __init__(self, modalities: Sequence[str]) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.theta = nn.Parameter(torch.zeros(len(self.modalities)))

    def forward(self, feats: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        ref = next(iter(feats.values()))
        # Absent modalities contribute zeros with zero weight; (B, M, dim).
        stacked = torch.stack([feats[m] if m in feats else torch.zeros_like(ref)
                               for m in self.modalities], dim=1)
        w = purified_weights(self.theta, mask)
        if w.dim() == 1:
            w = w.unsqueeze(0)
        return (w.unsqueeze(-1) * stacked).sum(dim=1)  # (B, dim)
