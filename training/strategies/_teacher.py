"""The purified teacher feature shared by the distillation strategies."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..model import MultimodalModel


def teacher_feature(model: MultimodalModel, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """f_T = Σ_i w_i f_i over every modality (w = softmax(θ)), detached: the teacher is a
    fixed target for the students within a step (PTA, "Purify")."""
    batch = next(iter(feats.values())).shape[0]
    with torch.no_grad():
        return model.fuse(feats, model.mask_for(tuple(feats), batch)).detach()
