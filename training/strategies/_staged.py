"""Strategies whose training passes through stages counted in epochs."""

from __future__ import annotations

import torch

from ..model import MultimodalModel
from ._base import Strategy


def stage_epochs(requested: int | None, total: int, fraction: float) -> int:
    """Epochs of a training stage: as requested, or ``fraction`` of the run (at least one
    when the run has more than one epoch, so a short run still passes through it)."""
    if requested is not None:
        if requested < 0:
            raise ValueError(f"stage length must be >= 0 epochs, got {requested}")
        return requested
    return max(1 if total > 1 else 0, int(total * fraction))


class StagedStrategy(Strategy):
    """Keeps the number of finished epochs in a buffer (saved with the checkpoint, so a
    resumed run continues in the right stage); ``forward`` reads it, never writes it."""

    epoch: torch.Tensor

    def _init_epoch_counter(self) -> None:
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    @property
    def epochs_done(self) -> int:
        return int(self.epoch)

    def on_epoch_end(self, model: MultimodalModel, epoch: int) -> None:
        del model  # the stage depends on time only
        self.epoch.fill_(epoch + 1)
