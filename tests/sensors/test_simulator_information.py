"""The simulated sensors carry information about the body, and the quality knob removes it.

Honest protocol: frames of 30 sequences (6 subjects in all 4 rooms x 5 actions); the last
quarter of every sequence is held out. Target: the 17 joints in the rig frame, in metres,
as MM-Fi's MPJPE measures them (no root alignment). Predictor: ridge (fixed alpha) on
fixed features of the raw frames (below): block-averaged depth
pixels, occupancy histograms of point clouds in a fixed rig-frame box, packet-averaged
cleaned CSI amplitudes, deliberately too simple to be clever. Baseline: the
mean training pose. The same split and features then run with one sensor at quality 0.
A further test repeats the check for pelvis-relative joints (the pose itself) on depth/LiDAR.
"""

from __future__ import annotations

import numpy as np
import pytest
from rigserve.sensors.csi import clean_csi
from rigserve.sensors.simulator import SequenceJob, generate_sequence, render_sequence
from rigserve.sensors.simulator.quality import resolve_quality
from rigserve.sensors.specs import environment_of

SENSORS = ("depth", "lidar", "mmwave", "wifi")
SUBJECTS = ("S01", "S02", "S11", "S21", "S31", "S32")
ACTIONS = ("A01", "A06", "A12", "A17", "A26")
ALPHA = 100.0

# Rig-frame box that holds every room's action zone (metres): x, y, z ranges.
_BOX = ((-2.0, 2.0), (1.5, 4.5), (0.0, 2.2))


def depth_features(frame: np.ndarray, block: int = 5) -> np.ndarray:
    """Mean of the valid (non-zero) pixels of each block, metres: (H/block * W/block,)."""
    H, W = frame.shape
    h, w = H // block, W // block
    x = frame[: h * block, : w * block].reshape(h, block, w, block).astype(np.float64) / 1000
    valid = x > 0
    return ((x * valid).sum((1, 3)) / np.maximum(valid.sum((1, 3)), 1)).ravel()


def _occupancy(points: np.ndarray, bins: tuple[int, int, int]) -> np.ndarray:
    hist, _ = np.histogramdd(points[:, :3], bins=bins, range=_BOX)
    return hist.ravel() / max(len(points), 1)


def lidar_features(frame: np.ndarray) -> np.ndarray:
    return _occupancy(frame, (10, 6, 12))


def mmwave_features(frame: np.ndarray) -> np.ndarray:
    doppler = np.histogram(frame[:, 3], bins=6, range=(-2.0, 2.0))[0] / len(frame)
    return np.concatenate([_occupancy(frame, (6, 4, 6)), doppler])


def wifi_features(frame: np.ndarray) -> np.ndarray:
    return clean_csi(frame).mean(axis=-1).ravel()  # (3 antennas * 114 subcarriers,)


FEATURES = {"depth": depth_features, "lidar": lidar_features, "mmwave": mmwave_features,
            "wifi": wifi_features}


def ridge_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                  alpha: float = 10.0) -> np.ndarray:
    """Ridge regression on standardised features; ``alpha`` per feature dimension."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    y_mean = y_train.mean(0)
    w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (y_train - y_mean))
    return b @ w + y_mean


def mpjpe_mm(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-joint position error in mm for (N, 51) or (N, 17, 3) arrays."""
    diff = (pred - truth).reshape(len(truth), -1, 3)
    return float(np.linalg.norm(diff, axis=-1).mean() * 1000)


def _features(modality: str, frame: np.ndarray) -> np.ndarray:
    return depth_features(frame, block=3) if modality == "depth" else FEATURES[modality](frame)


def _dataset(modalities: tuple[str, ...], quality: dict[str, float], frames: int,
             relative: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Features per modality (N, F), joints (N, 51) and the held-out mask (N,)."""
    feats: dict[str, list[np.ndarray]] = {m: [] for m in modalities}
    joints, held_out = [], []
    for subject in SUBJECTS:
        env = environment_of(subject)
        for action in ACTIONS:
            job = SequenceJob("unused", env, subject, action, frames, (30, 40),
                              resolve_quality(quality), 0, modalities)
            rendered = render_sequence(job)
            gt = generate_sequence(0, env, subject, action, frames).joints
            joints.append((gt - gt[:, :1]) if relative else gt)
            held_out += [False] * (frames - frames // 4) + [True] * (frames // 4)
            for m in modalities:
                feats[m].append(np.stack([_features(m, f.array) for f in rendered[m]]))
    y = np.concatenate(joints).reshape(-1, 51)
    return {m: np.concatenate(v) for m, v in feats.items()}, y, np.array(held_out)


def _errors(x: np.ndarray, y: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    """(ridge MPJPE, mean-pose MPJPE) on the held-out frames, mm."""
    pred = ridge_predict(x[~test], y[~test], x[test], ALPHA)
    mean_pose = np.broadcast_to(y[~test].mean(0), y[test].shape)
    return mpjpe_mm(pred, y[test]), mpjpe_mm(mean_pose, y[test])


@pytest.fixture(scope="module")
def default_rig() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    return _dataset(SENSORS, {}, frames=16)


@pytest.mark.parametrize("modality", SENSORS)
def test_each_sensor_predicts_held_out_joints_better_than_the_mean_pose(
        default_rig: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray], modality: str) -> None:
    x, y, test = default_rig
    ridge, mean_pose = _errors(x[modality], y, test)
    assert ridge < 0.8 * mean_pose, f"{modality}: {ridge:.0f} mm vs mean pose {mean_pose:.0f} mm"


@pytest.mark.parametrize("modality", SENSORS)
def test_turning_a_sensors_quality_to_zero_makes_its_prediction_worse(
        default_rig: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray], modality: str) -> None:
    x, y, test = default_rig
    clean, _ = _errors(x[modality], y, test)
    x_noisy, y_noisy, _ = _dataset((modality,), {modality: 0.0}, frames=16)
    np.testing.assert_array_equal(y_noisy, y)  # same bodies, only the sensor changed
    noisy, _ = _errors(x_noisy[modality], y, test)
    assert noisy > 1.08 * clean, f"{modality}: quality 0 gives {noisy:.0f} mm vs {clean:.0f} mm"


@pytest.mark.parametrize("modality", ["depth", "lidar"])
def test_depth_and_lidar_carry_the_pose_itself(modality: str) -> None:
    x, y, test = _dataset((modality,), {}, frames=24, relative=True)
    ridge, mean_pose = _errors(x[modality], y, test)
    assert ridge < 0.85 * mean_pose, f"{modality}: relative {ridge:.0f} vs {mean_pose:.0f} mm"
