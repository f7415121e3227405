"""The strategy interface and registry (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

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


StrategyFactory = Callable[..., Strategy]
STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    def deco(cls: type[Strategy]) -> type[Strategy]:
        if name in STRATEGIES:
            raise ValueError(f"strategy {name!r} is already registered")
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return deco


def create_strategy(name: str, model: MultimodalModel, cfg: TrainConfig,
                    **kwargs: Any) -> Strategy:
    """Build strategy ``name`` for ``model``; it may add heads or swap the fusion."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise KeyError(f"unknown strategy {name!r}; registered strategies: {known}") from None
    return cls(model, cfg, **kwargs)
