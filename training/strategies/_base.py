"""The strategy interface and registry (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from rigserve.registry import Registry

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..model import MultimodalModel


@dataclass
class Batch:
    """One training batch, model-ready.

    ``inputs``: modality → (B, ...) tensors for every model modality (real data, even for
    modalities the dropout mask removes); ``present``: (B, M) float 0/1 in
    ``model.modalities`` order, the modalities this sample may use (modality dropout);
    ``joints`` (B, 17, 3) metres; ``action`` (B,) int64 in 0..26.
    """

    inputs: dict[str, torch.Tensor]
    joints: torch.Tensor
    action: torch.Tensor
    present: torch.Tensor

    def __len__(self) -> int:
        return int(self.joints.shape[0])


class Strategy(nn.Module):
    """Base class: a distillation method as a module returning named losses."""

    name: str = ""

    def __init__(self, model: MultimodalModel, cfg: TrainConfig) -> None:  # noqa: ARG002
        super().__init__()
        self.cfg = cfg
        #: Fraction of training done, set by the trainer before every step (a plain
        #: float, not state: the trainer recomputes it from its step count on resume).
        self.progress = 1.0

    def set_progress(self, step: int, total: int) -> None:
        self.progress = step / max(1, total)

    def kd_weight(self) -> float:
        """λ of L_inner = L_task + λ·L_kd, ramped linearly over ``align.ramp`` of training."""
        a = self.cfg.align
        if a.ramp <= 0:
            return a.weight
        return a.weight * min(1.0, self.progress / a.ramp)

    def forward(self, model: MultimodalModel, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_epoch_end(self, model: MultimodalModel, epoch: int) -> None:
        """Hook for epoch-level updates (e.g. prototype refresh); default does nothing."""

    def lr_scales(self) -> dict[str, float]:
        """Learning-rate multipliers by parameter-name prefix, as the trainer's
        ``TrainModule`` names them (``model.…``, ``strategy.…``); default: none."""
        return {}

    def param_groups(self, named: list[tuple[str, nn.Parameter]], lr: float
                     ) -> list[dict[str, Any]]:
        """Optimizer parameter groups honouring :meth:`lr_scales`."""
        from ._options import scaled_param_groups

        return scaled_param_groups(named, self.lr_scales(), lr)


#: strategy name → class; an unknown name raises KeyError listing what is registered.
STRATEGIES: Registry[str, type[Strategy]] = Registry("strategy")


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    def deco(cls: type[Strategy]) -> type[Strategy]:
        STRATEGIES.add(name, cls)
        cls.name = name
        return cls

    return deco


def create_strategy(name: str, model: MultimodalModel, cfg: TrainConfig,
                    **kwargs: Any) -> Strategy:
    """Build strategy ``name`` for ``model``; it may add heads or swap the fusion."""
    return STRATEGIES[name](model, cfg, **kwargs)
