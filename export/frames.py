"""Held-out frames for parity and accuracy, and calibration frames for INT8.

When the run records its data folder (``config["data"]``) and its split (``RUN/split.json``),
parity runs on the validation split with ground truth and INT8 calibrates on training
frames, so accuracy deltas are real MPJPE / top-1 changes. Otherwise (a run whose data is
gone, a model built in a test) frames are synthesised in the model-input ranges of
``rigserve.sensors.preprocess`` and accuracy is measured against PyTorch's own outputs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class HeldOutFrames:
    """Model-ready frames ``{modality: (N, ...) float32}`` plus ground truth when known."""

    inputs: Mapping[str, np.ndarray]
    calibration: Mapping[str, np.ndarray]
    joints: np.ndarray | None
    actions: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def feeds(self, subset: Sequence[str]) -> dict[str, np.ndarray]:
        return {m: self.inputs[m] for m in subset}

    def calibration_feeds(self, subset: Sequence[str]) -> dict[str, np.ndarray]:
        return {m: self.calibration[m] for m in subset}


def held_out_frames(run_dir: Path | None, config: Mapping[str, Any], modalities: Sequence[str],
                    spec: Any, input_shapes: Mapping[str, tuple[int, ...]], *, frames: int,
                    calibration: int, seed: int = 0) -> HeldOutFrames:
    """The run's validation frames when its data and split are on disk, else synthetic."""
    data = config.get("data") or ""
    split_file = run_dir / SPLIT_FILE if run_dir is not None else None
    if data and Path(data).is_dir() and split_file is not None and split_file.is_file():
        try:
            return _from_dataset(Path(data), split_file, modalities, spec, frames=frames,
                                 calibration=calibration)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("cannot read the run's validation split from %s (%s); parity "
                           "falls back to synthetic frames", data, exc)
    return synthetic_frames(modalities, input_shapes, frames=frames, calibration=calibration,
                            seed=seed)


def _evenly(arrays: Mapping[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    """``count`` frames evenly spread over the split (every sequence and action represented)."""
    total = len(next(iter(arrays.values())))
    idx = np.linspace(0, total - 1, num=min(count, total)).round().astype(np.int64)
    return {k: v[idx] for k, v in arrays.items()}


def _from_dataset(root: Path, split_file: Path, modalities: Sequence[str], spec: Any, *,
                  frames: int, calibration: int) -> HeldOutFrames:
    from rigserve.sensors.dataset import MMFiDataset, MMFiIndex, Split

    index = MMFiIndex.scan(root)
    split = Split.from_dict(json.loads(split_file.read_text()), index)
    if not split.val:
        raise ValueError(f"{split_file} has no validation sequences")
    val = _evenly(MMFiDataset(index, split.val, modalities, spec).to_arrays(), frames)
    calib_seqs = split.train or split.val
    calib = _evenly(MMFiDataset(index, calib_seqs, modalities, spec).to_arrays(), calibration)
    return HeldOutFrames(
        inputs={m: val[m] for m in modalities}, calibration={m: calib[m] for m in modalities},
        joints=val["joints"].astype(np.float32), actions=val["action"].astype(np.int64),
        source=f"validation split of {root} ({len(val['joints'])} frames)",
    )


def synthetic_frames(modalities: Sequence[str], input_shapes: Mapping[str, tuple[int, ...]], *,
                     frames: int, calibration: int, seed: int = 0) -> HeldOutFrames:
    """Frames in each modality's model-input range; no ground truth."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> dict[str, np.ndarray]:
        return {m: _synth(m, n, input_shapes[m], rng) for m in modalities}

    return HeldOutFrames(inputs=draw(frames), calibration=draw(calibration), joints=None,
                         actions=None, source=f"synthetic ({frames} frames, no ground truth)")


def _synth(modality: str, n: int, shape: tuple[int, ...], rng: np.random.Generator
           ) -> np.ndarray:
    x = rng.random((n, *shape), dtype=np.float32)
    if modality == "depth":
        return x * 6.0  # (N, 1, H, W) metres within depth_max_m's default range
    if len(shape) == 2 and shape[1] >= 4:
        # (N, P, C+1) points: x y z in a ~3 m room, last column the valid flag with a
        # random number of real points per frame and zero padding after them.
        pts = rng.normal(0.0, 1.0, (n, *shape)).astype(np.float32)
        count = rng.integers(shape[0] // 4, shape[0] + 1, size=n)
        valid = (np.arange(shape[0])[None, :] < count[:, None]).astype(np.float32)
        pts[..., -1] = valid
        pts[..., :-1] *= valid[..., None]
        return pts
    return x  # CSI amplitudes are min-max cleaned into [0, 1]
