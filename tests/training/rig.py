"""A tiny MM-Fi-layout folder written with the real codecs (no simulator needed).

Sensor frames carry a weak, deterministic function of the pose so a model can learn
something in a few steps; the point of these folders is the data path, not accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rigserve.sensors.formats import frame_path, ground_truth_path, write_frame, write_ground_truth

SEQUENCES = (("E01", "S01"), ("E01", "S02"), ("E02", "S11"), ("E02", "S12"), ("E02", "S13"))
ACTIONS = ("A02", "A03")
#: Small model inputs for tests: preprocess overrides to pass as config.
PREPROCESS = {"depth_size": [24, 32], "lidar_points": 32, "mmwave_points": 16}


def _frame(modality: str, joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    centre = joints.mean(0)
    if modality == "depth":
        img = np.zeros((480, 640), np.uint16)
        img[120:360, 200:440] = np.uint16(1000 + 400 * centre[2] + rng.integers(0, 50))
        return img
    if modality == "lidar":
        return (joints[rng.integers(0, 17, 40)] + rng.normal(0, 0.02, (40, 3))).astype(np.float64)
    if modality == "mmwave":
        pts = joints[rng.integers(0, 17, 12)] + rng.normal(0, 0.05, (12, 3))
        return np.concatenate([pts, rng.normal(0, 1, (12, 2))], axis=1)
    return np.abs(rng.normal(10 + 5 * centre[0], 1, (3, 114, 10)))


def write_tiny_rig(root: Path, modalities: tuple[str, ...] = ("depth", "lidar", "wifi"),
                   frames: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for env, subject in SEQUENCES:
        for a, action in enumerate(ACTIONS):
            t = np.linspace(0, 1, frames)[:, None, None]
            base = rng.normal(0, 0.3, (1, 17, 3)) + np.array([0, 0, 3.0])
            joints = base + 0.2 * np.sin(2 * np.pi * (t + a / 2)) * rng.normal(0, 1, (1, 17, 3))
            write_ground_truth(ground_truth_path(root, env, subject, action), joints)
            for i in range(frames):
                for m in modalities:
                    write_frame(m, frame_path(root, env, subject, action, m, i + 1),
                                _frame(m, joints[i], rng))
    return root
