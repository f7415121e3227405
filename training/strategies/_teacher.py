"""The purified teacher feature shared by the distillation strategies."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..model import MultimodalModel


def teacher_feature(model: MultimodalModel, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """f_T = Σ_i w_i sg(f_i) over every modality, w = softmax(θ) (PTA, "Purify").

    The students' features are a fixed target (stop-gradient), but f_T stays a function
    of θ: the look-ahead hypergradient must see how the purified weights shape the
    distillation target. θ's gradient from the inner loss is discarded by the trainer
    (θ moves only by the meta step).
    """
    batch = next(iter(feats.values())).shape[0]
    frozen = {m: f.detach() for m, f in feats.items()}
    return model.fuse(frozen, model.mask_for(tuple(feats), batch))
