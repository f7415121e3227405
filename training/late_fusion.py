"""Independently trained unimodal models, fused late (the unimodal-baseline ablation).

A subset's prediction averages its members' outputs (joints, logits, any extra head):
no shared features, no learned weights. Same interface as ``MultimodalModel`` for
evaluation and export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .model import MultimodalModel


class LateFusionModel(nn.Module):
    def __init__(self, members: Mapping[str, MultimodalModel]) -> None:
        super().__init__()
        self.members = nn.ModuleDict(dict(members))
        self.modalities: tuple[str, ...] = tuple(sorted(members))
        first = next(iter(self.members.values()))
        self.output_names: tuple[str, ...] = first.output_names

    def forward(self, inputs: Mapping[str, torch.Tensor],
                mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Average of the present members; ``mask`` (B, M) selects members per sample."""
        present = [m for m in self.modalities if m in inputs]
        if not present:
            raise ValueError(f"no model modality in inputs {sorted(inputs)}; "
                             f"model takes {list(self.modalities)}")
        batch = inputs[present[0]].shape[0]
        if mask is None:
            mask = torch.ones(batch, len(self.modalities))
        outs = {m: self.members[m]({m: inputs[m]}) for m in present}
        cols = torch.stack([mask[:, self.modalities.index(m)] for m in present], dim=1)  # (B,S)
        cols = cols / cols.sum(dim=1, keepdim=True).clamp_min(1e-12)
        result = {}
        for name in self.output_names:
            stacked = torch.stack([outs[m][name] for m in present], dim=1)  # (B, S, ...)
            w = cols.reshape(*cols.shape, *([1] * (stacked.dim() - 2)))
            result[name] = (w * stacked).sum(dim=1)
        return result

    def purified_weights(self, subset: Sequence[str] | None = None) -> dict[str, float]:
        mods = tuple(sorted(subset)) if subset else self.modalities
        return {m: 1.0 / len(mods) for m in mods}

    def subset_model(self, subset: Sequence[str]) -> LateFusionSubset:
        return LateFusionSubset(self, subset)


class LateFusionSubset(nn.Module):
    """``forward(*inputs)`` in sorted order: the mean of the members' subset outputs."""

    def __init__(self, model: LateFusionModel, subset: Sequence[str]) -> None:
        super().__init__()
        subset = tuple(sorted(subset))
        if not subset or any(m not in model.modalities for m in subset):
            raise ValueError(f"subset {list(subset)}: must be a non-empty subset of "
                             f"{list(model.modalities)}")
        self.subset = subset
        self.input_names = subset
        self.output_names = model.output_names
        self.members = nn.ModuleList([model.members[m].subset_model([m]) for m in subset])

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = [member(x) for member, x in zip(self.members, inputs, strict=True)]
        return tuple(torch.stack([o[i] for o in outs]).mean(dim=0)
                     for i in range(len(self.output_names)))
