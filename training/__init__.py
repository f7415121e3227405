"""Training: encoders, purified fusion, distillation strategies, evaluation, checkpoints."""

from .checkpoint import LoadedRun, load_run
from .config import PRESETS, TrainConfig
from .model import MultimodalModel, SubsetModel
from .trainer import train

__all__ = ["PRESETS", "LoadedRun", "MultimodalModel", "SubsetModel", "TrainConfig", "load_run",
           "train"]
