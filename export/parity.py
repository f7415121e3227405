"""Parity and accuracy of an engine against the PyTorch model it was exported from.

fp32 engines must match PyTorch (max abs error on ``joints`` within tolerance) or the
export fails. Reduced precision is allowed to differ; its accuracy change is measured on
held-out frames and recorded: against ground truth when the run's validation split is
available (MPJPE, action top-1 of engine minus PyTorch), else against the PyTorch outputs
themselves (``*_vs_pytorch``: the engine's MPJPE from, and top-1 agreement with, PyTorch).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from rigserve.export.errors import ParityError

__all__ = ["ParityError", "accuracy", "accuracy_delta", "check_fp32", "max_abs_errors"]


def max_abs_errors(reference: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]
                   ) -> dict[str, float]:
    """``max_abs_err_<output>`` for every reference output; non-finite counts as infinite."""
    out: dict[str, float] = {}
    for name, ref in reference.items():
        if name not in got:
            raise ParityError(f"engine has no output {name!r}; it returned {sorted(got)}")
        value = np.asarray(got[name], dtype=np.float64)
        if value.shape != ref.shape:
            raise ParityError(f"output {name!r}: engine shape {value.shape} differs from "
                              f"PyTorch's {ref.shape}")
        diff = np.abs(value - ref)
        out[f"max_abs_err_{name}"] = float(diff.max()) if np.isfinite(diff).all() else float("inf")
    return out


def check_fp32(engine: str, errors: Mapping[str, float], reference: Mapping[str, np.ndarray],
               tolerance: float) -> None:
    """Raise :class:`ParityError` naming the engine when fp32 parity fails.

    ``joints`` (metres) is held to ``tolerance`` absolutely; other heads (logits of any
    scale) to ``tolerance`` relative to their largest magnitude.
    """
    for name, ref in reference.items():
        err = errors[f"max_abs_err_{name}"]
        scale = 1.0 if name == "joints" else max(1.0, float(np.abs(ref).max()))
        if not err <= tolerance * scale:
            raise ParityError(
                f"engine {engine}: fp32 parity failed on {name!r}: max abs error {err:.3g} vs "
                f"PyTorch exceeds the tolerance {tolerance * scale:.3g}; the ONNX graph does not "
                "compute what the model computes (an op exported wrongly, or a batch size baked "
                "into the graph by tracing)")


def accuracy(outputs: Mapping[str, np.ndarray], joints: np.ndarray | None,
             actions: np.ndarray | None) -> dict[str, float]:
    """MPJPE (mm, no alignment) and action top-1 of ``outputs`` against ground truth."""
    out: dict[str, float] = {}
    if joints is not None and "joints" in outputs:
        # (N, 17, 3) metres -> mean per-joint Euclidean error in millimetres.
        dist = np.linalg.norm(outputs["joints"].astype(np.float64) - joints, axis=-1)
        out["mpjpe_mm"] = float(dist.mean() * 1000.0)
    if actions is not None and "action_logits" in outputs:
        out["action_top1"] = float((outputs["action_logits"].argmax(-1) == actions).mean())
    return out


def accuracy_delta(engine: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
                   joints: np.ndarray | None, actions: np.ndarray | None) -> dict[str, float]:
    """The engine's accuracy change from PyTorch on the same frames (see module docstring)."""
    if joints is not None or actions is not None:
        mine = accuracy(engine, joints, actions)
        theirs = accuracy(reference, joints, actions)
        return {k: mine[k] - theirs[k] for k in mine}
    pseudo_joints = reference.get("joints")
    pseudo_actions = (reference["action_logits"].argmax(-1)
                      if "action_logits" in reference else None)
    vs = accuracy(engine, pseudo_joints, pseudo_actions)
    delta: dict[str, float] = {}
    if "mpjpe_mm" in vs:
        delta["mpjpe_mm_vs_pytorch"] = vs["mpjpe_mm"]
    if "action_top1" in vs:
        delta["action_top1_vs_pytorch"] = vs["action_top1"] - 1.0
    return delta
