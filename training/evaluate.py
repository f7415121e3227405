"""Evaluation on every non-empty modality subset, through the export view of the model.

Predictions come from ``model.subset_model(subset)``, the exact module export traces,
so the metrics in a run describe the engines the server will run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from rigserve.sensors.specs import all_subsets, subset_name

from .data import ArraySet
from .metrics import mpjpe_mm, pa_mpjpe_mm, top1

METRIC_KEYS = ("mpjpe_mm", "pa_mpjpe_mm", "action_top1")


@torch.no_grad()
def predict(model: Any, subset: tuple[str, ...], data: ArraySet,
            batch_size: int = 128) -> dict[str, np.ndarray]:
    sub = model.subset_model(subset).eval()
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in sub.output_names}
    for start in range(0, len(data), batch_size):
        outs = sub(*(data.inputs[m][start:start + batch_size] for m in subset))
        for name, out in zip(sub.output_names, outs, strict=True):
            chunks[name].append(out.numpy())
    return {n: np.concatenate(c) for n, c in chunks.items()}


def subset_metrics(pred: dict[str, np.ndarray], data: ArraySet) -> dict[str, float]:
    out: dict[str, float] = {"frames": float(len(data))}
    gt = data.joints.numpy()
    if "joints" in pred:
        out["mpjpe_mm"] = mpjpe_mm(pred["joints"], gt)
        out["pa_mpjpe_mm"] = pa_mpjpe_mm(pred["joints"], gt)
    if "action_logits" in pred:
        out["action_top1"] = top1(pred["action_logits"], data.action.numpy())
    return out


def evaluate_subsets(model: Any, data: ArraySet, batch_size: int = 128
                     ) -> dict[str, dict[str, float]]:
    """``{subset name: {mpjpe_mm, pa_mpjpe_mm, action_top1, frames}}`` for all 2^M − 1."""
    was_training = model.training
    model.eval()
    try:
        return {subset_name(s): subset_metrics(predict(model, s, data, batch_size), data)
                for s in all_subsets(model.modalities)}
    finally:
        model.train(was_training)


def mean_row(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = [k for k in METRIC_KEYS if all(k in row for row in metrics.values())]
    return {k: float(np.mean([row[k] for row in metrics.values()])) for k in keys}
