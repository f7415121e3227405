"""Training: encoders, purified fusion, distillation strategies, evaluation, checkpoints.

Only the torch-free configuration (``TrainConfig``, ``PRESETS``) is imported eagerly, so
`rigserve --help` and the torch-free serving image can read it; the model, trainer and
checkpoint names load torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rigserve.training.config import PRESETS, TrainConfig

if TYPE_CHECKING:
    from rigserve.training.checkpoint import LoadedRun, load_run
    from rigserve.training.model import MultimodalModel, SubsetModel
    from rigserve.training.trainer import train

__all__ = ["PRESETS", "LoadedRun", "MultimodalModel", "SubsetModel", "TrainConfig", "load_run",
           "train"]

_LAZY = {"LoadedRun": "checkpoint", "load_run": "checkpoint", "MultimodalModel": "model",
         "SubsetModel": "model", "train": "trainer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
