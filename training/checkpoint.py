"""Checkpoints and run folders.

``RUN/checkpoint.pt`` holds everything to rebuild and resume: the resolved config, the
modalities and their input shapes, the model (θ included), the strategy's own training
parts, the optimisers, the RNG states, the split, the history and the metrics.
``load_run(RUN)`` gives the export side what it needs without any training code path.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
FORMAT = 1


class CheckpointError(RuntimeError):
    """A run folder or checkpoint that is missing or unreadable."""


@dataclass
class LoadedRun:
    """A trained run as export and evaluation see it (docs/contracts.md)."""

    model: nn.Module
    modalities: tuple[str, ...]
    spec: Any  # rigserve.sensors.preprocess.PreprocessSpec
    config: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    weights: dict[str, float]
    strategy: str
    path: Path = field(default_factory=Path)
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically: a crash mid-save never leaves a truncated checkpoint behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    tmp.replace(path)


def read_checkpoint(run: str | Path) -> dict[str, Any]:
    path = Path(run)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint; expected a run folder written by "
                              f"`rigserve train` (RUN/{CHECKPOINT})")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from exc
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {state.get('format')!r}, "
                              f"this rigserve reads format {FORMAT}")
    return state


def load_run(run: str | Path) -> LoadedRun:
    """Rebuild the trained model of ``RUN`` in eval mode, with its config and metrics."""
    from .factory import build_model

    root = Path(run)
    state = read_checkpoint(root)
    cfg = TrainConfig.from_dict(state["config"])
    # Every epoch's checkpoint is resumable, so a run stopped by Ctrl-C looks complete on
    # disk; exporting it would publish a half-trained model with no validation metrics.
    epoch, epochs = state.get("epoch", cfg.optim.epochs), cfg.optim.epochs
    if epoch < epochs:
        raise CheckpointError(f"{root}: training stopped at epoch {epoch} of {epochs} "
                              "(interrupted?); finish it with `rigserve train --data DIR "
                              f"--out {root} --resume` first")
    shapes = {m: tuple(s) for m, s in state["input_shapes"].items()}
    model, _ = build_model(cfg, shapes)
    model.load_state_dict(state["model"])
    model.eval()
    metrics = state.get("metrics") or {}
    metrics_file = (root if root.is_dir() else root.parent) / "metrics.json"
    if not metrics and metrics_file.exists():
        metrics = json.loads(metrics_file.read_text()).get("subsets", {})
    return LoadedRun(
        model=model, modalities=tuple(model.modalities), spec=preprocess_spec(cfg),
        config=cfg.to_dict(), metrics=metrics, weights=model.purified_weights(),
        strategy=cfg.strategy, path=root, input_shapes=shapes,
    )


def preprocess_spec(cfg: TrainConfig) -> Any:
    """The run's ``PreprocessSpec`` (the defaults when the config names none)."""
    from rigserve.sensors.preprocess import PreprocessSpec

    return PreprocessSpec.from_dict(dict(cfg.preprocess)) if cfg.preprocess else PreprocessSpec()
