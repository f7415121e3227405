"""Writes small folders with real MM-Fi naming through the sensors writers (a test helper).

The content is random but shaped exactly like MM-Fi's: the point is the layout and the
formats, not the physics (the simulator's tests cover that).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from rigserve.sensors.formats import frame_path, ground_truth_path, write_frame, write_ground_truth
from rigserve.sensors.specs import environment_of

MODALITIES = ("depth", "lidar", "mmwave", "wifi")


def random_frame(modality: str, rng: np.random.Generator,
                 depth_hw: tuple[int, int] = (48, 64)) -> np.ndarray:
    if modality == "depth":
        img = rng.integers(500, 5000, size=depth_hw, dtype=np.uint16)
        img[rng.random(depth_hw) < 0.1] = 0  # missing returns
        return img
    if modality == "lidar":
        return rng.normal(size=(int(rng.integers(50, 400)), 3))
    if modality == "mmwave":
        return rng.normal(size=(int(rng.integers(5, 80)), 5))
    if modality == "wifi":
        return rng.uniform(5, 40, size=(3, 114, 10))
    return rng.uniform(0, 640, size=(17, 2))


def write_sequence(root: Path, subject: str, action: str, frames: int,
                   rng: np.random.Generator, modalities: Iterable[str] = MODALITIES,
                   depth_hw: tuple[int, int] = (48, 64)) -> np.ndarray:
    """Writes one E/S/A sequence; returns its ground truth (frames, 17, 3)."""
    env = environment_of(subject)
    for m in modalities:
        for i in range(1, frames + 1):
            write_frame(m, frame_path(root, env, subject, action, m, i),
                        random_frame(m, rng, depth_hw))
    gt = rng.normal(scale=0.5, size=(frames, 17, 3))
    write_ground_truth(ground_truth_path(root, env, subject, action), gt)
    return gt


def write_folder(root: Path, subjects: Iterable[str], actions: Iterable[str], frames: int = 3,
                 seed: int = 0, modalities: Iterable[str] = MODALITIES,
                 depth_hw: tuple[int, int] = (48, 64)) -> dict[str, np.ndarray]:
    """Every subject x action; returns ground truth per sequence key ``E01/S01/A01``."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in subjects:
        for a in actions:
            gt = write_sequence(root, s, a, frames, rng, modalities, depth_hw)
            out[f"{environment_of(s)}/{s}/{a}"] = gt
    return out
